import { strict as assert } from 'node:assert';
import type { ErrnoName } from '../server/common/fs-error';
import { codeOf } from './helpers/errno';
import { checkName, isSameOrBelow, MAX_NAME_BYTES, MAX_PATH_BYTES, splitPath } from '../server/master/paths';
import { rawLength } from '../server/common/raw-names';

/** A path of exactly `bytes` bytes made of several components (each <= 255 bytes). */
function pathOfBytes(bytes: number, unit = 'x'): string {
  const unitBytes = Buffer.byteLength(unit);
  const parts: string[] = [];
  let length = 0;
  while (length < bytes) {
    const left = bytes - length - 1; // room after the next '/'
    if (left < 1) {
      parts.push('y'.repeat(bytes - length)); // cannot happen for bytes >= 2
      break;
    }
    const maxUnits = Math.floor(Math.min(left, 200) / unitBytes);
    const pad = Math.min(left, 200) - maxUnits * unitBytes;
    parts.push('/' + unit.repeat(maxUnits) + 'z'.repeat(pad));
    length += 1 + maxUnits * unitBytes + pad;
  }
  return parts.join('');
}

describe('paths', () => {
  describe('splitPath', () => {
    const good: Array<[string, string[]]> = [
      ['/', []],
      ['/a', ['a']],
      ['/a/b/c', ['a', 'b', 'c']],
      ['/.a', ['.a']],
      ['/..a', ['..a']],
      ['/a.', ['a.']],
      ['/...', ['...']],
      ['/a b', ['a b']],
      ['/é/日本', ['é', '日本']],
      ['/a\\b', ['a\\b']],
      ['/' + 'x'.repeat(255), ['x'.repeat(255)]],
    ];
    for (const [path, parts] of good) {
      it(`accepts ${JSON.stringify(path.length > 40 ? path.slice(0, 40) + '…' : path)}`, () => {
        assert.deepStrictEqual(splitPath(path), parts);
      });
    }

    const bad: Array<[string, string, ErrnoName]> = [
      ['empty', '', 'EINVAL'],
      ['relative', 'a', 'EINVAL'],
      ['relative with slash', 'a/b', 'EINVAL'],
      ['relative dot', '.', 'EINVAL'],
      ['double slash at start', '//a', 'EINVAL'],
      ['double slash in middle', '/a//b', 'EINVAL'],
      ['only double slash', '//', 'EINVAL'],
      ['trailing slash', '/a/', 'EINVAL'],
      ['trailing slash deep', '/a/b/', 'EINVAL'],
      ['dot component', '/a/./b', 'EINVAL'],
      ['trailing dot', '/a/.', 'EINVAL'],
      ['leading dot', '/.', 'EINVAL'],
      ['dotdot component', '/a/../b', 'EINVAL'],
      ['trailing dotdot', '/a/..', 'EINVAL'],
      ['leading dotdot', '/..', 'EINVAL'],
      ['NUL in name', '/a\0b', 'EINVAL'],
      ['NUL as name', '/a/\0', 'EINVAL'],
      ['256-byte component', '/' + 'x'.repeat(256), 'ENAMETOOLONG'],
      ['256-byte component in the middle', '/a/' + 'x'.repeat(256) + '/b', 'ENAMETOOLONG'],
      ['128 x é = 256 bytes', '/' + 'é'.repeat(128), 'ENAMETOOLONG'],
      ['86 x € = 258 bytes', '/' + '€'.repeat(86), 'ENAMETOOLONG'],
      ['64 x 4-byte emoji = 256 bytes', '/' + '😀'.repeat(64), 'ENAMETOOLONG'],
      ['path of the bound (1 MiB)', pathOfBytes(MAX_PATH_BYTES), 'ENAMETOOLONG'],
      ['path past the bound', pathOfBytes(MAX_PATH_BYTES + 5000), 'ENAMETOOLONG'],
      ['path of the bound, multi-byte', pathOfBytes(MAX_PATH_BYTES, 'é'), 'ENAMETOOLONG'],
    ];
    for (const [label, path, code] of bad) {
      it(`rejects ${label} with ${code}`, () => {
        assert.equal(codeOf(() => splitPath(path)), code);
      });
    }

    it('the test helper builds paths of the exact byte length', () => {
      for (const n of [4095, 4096, 5000, MAX_PATH_BYTES]) {
        assert.equal(Buffer.byteLength(pathOfBytes(n)), n);
        assert.equal(Buffer.byteLength(pathOfBytes(n, 'é')), n);
      }
    });

    it('accepts paths past PATH_MAX up to one byte short of the bound (several components)', () => {
      for (const n of [4095, 4096, 5000, MAX_PATH_BYTES - 1]) {
        const p = pathOfBytes(n);
        assert.equal(Buffer.byteLength(p), n);
        const parts = splitPath(p);
        assert.ok(parts.length > 1);
        assert.equal(parts.join('/').length + 1, p.length);
      }
    });

    it('accepts multi-byte paths past PATH_MAX', () => {
      const p = pathOfBytes(5000, 'é');
      assert.ok(p.length < 5000, 'fewer UTF-16 units than bytes');
      assert.ok(splitPath(p).length > 1);
    });

    it('accepts 255-byte multi-byte names', () => {
      assert.deepStrictEqual(splitPath('/' + 'é'.repeat(127) + 'a'), ['é'.repeat(127) + 'a']);
      assert.deepStrictEqual(splitPath('/' + '€'.repeat(85)), ['€'.repeat(85)]);
      assert.deepStrictEqual(splitPath('/' + '😀'.repeat(63) + 'abc'), ['😀'.repeat(63) + 'abc']);
    });
  });

  describe('checkName', () => {
    const cases: Array<[string, ErrnoName | null]> = [
      ['a', null],
      ['x'.repeat(MAX_NAME_BYTES), null],
      ['x'.repeat(MAX_NAME_BYTES + 1), 'ENAMETOOLONG'],
      ['é'.repeat(128), 'ENAMETOOLONG'],
      ['é'.repeat(127), null],
      // A byte that is not UTF-8 comes from the mount as one character of U+F780..U+F7FF
      // (server/common/raw-names.ts): three bytes of UTF-8, one of the name's.
      ['\uf780'.repeat(MAX_NAME_BYTES), null],
      ['\uf780'.repeat(MAX_NAME_BYTES + 1), 'ENAMETOOLONG'],
      ['\uf7ff'.repeat(253) + 'é', null],
      ['\uf7ff'.repeat(254) + 'é', 'ENAMETOOLONG'],
      ['\uf7c3\uf7a9', 'EINVAL'], // the bytes of 'é': no name the mount makes
      ['a\ud800', 'EINVAL'], // a lone surrogate
      ['', 'EINVAL'],
      ['.', 'EINVAL'],
      ['..', 'EINVAL'],
      ['a/b', 'EINVAL'],
      ['/', 'EINVAL'],
      ['a\0', 'EINVAL'],
      ['...', null],
    ];
    for (const [name, code] of cases) {
      it(`${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${rawLength(name)} bytes)` : name)} -> ${code ?? 'ok'}`, () => {
        assert.equal(codeOf(() => checkName(name)), code);
      });
    }
  });

  describe('isSameOrBelow', () => {
    const cases: Array<[string[], string[], boolean]> = [
      [[], [], true],
      [['a'], [], true],
      [['a'], ['a'], true],
      [['a', 'b'], ['a'], true],
      [['a', 'b', 'c'], ['a'], true],
      [['a'], ['a', 'b'], false],
      [['ab'], ['a'], false],
      [['a', 'b'], ['b'], false],
      [['b', 'a'], ['a'], false],
      [[], ['a'], false],
    ];
    for (const [inner, outer, want] of cases) {
      it(`/${inner.join('/')} below /${outer.join('/')} = ${want}`, () => {
        assert.equal(isSameOrBelow(inner, outer), want);
      });
    }
  });
});
