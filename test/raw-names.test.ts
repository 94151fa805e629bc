import { strict as assert } from 'assert';
import { decodeKernelName } from '../mount/fuse-binding';
import { decodeRawName, isRawName, rawLength, rawName, writeRawName } from '../server/common/raw-names';
import { prng } from './helpers/prng';

/** Byte strings without NUL that probe every decoding rule, then random ones. */
function* samples(): Generator<Buffer> {
  for (let a = 1; a < 256; a++) {
    yield Buffer.of(a);
    for (const b of [0x2f, 0x7f, 0x80, 0x8f, 0x90, 0x9e, 0x9f, 0xa0, 0xa9, 0xbf, 0xc0, 0xc3, 0xe9, 0xef, 0xf4, 0xff]) yield Buffer.of(a, b);
  }
  const leads = [0xc2, 0xdf, 0xe0, 0xed, 0xee, 0xef, 0xf0, 0xf3, 0xf4, 0xf5];
  const tails = [0x80, 0x8f, 0x90, 0x9e, 0x9f, 0xa0, 0xbf, 0xc0, 0x41];
  for (const l of leads) for (const t1 of tails) for (const t2 of tails) for (const t3 of [...tails, undefined]) {
    yield Buffer.from(t3 === undefined ? [l, t1, t2] : [l, t1, t2, t3]);
  }
  const random = prng(11);
  for (let i = 0; i < 20_000; i++) {
    yield Buffer.from(Array.from({ length: 1 + Math.floor(random() * 40) }, () => 1 + Math.floor(random() * 255)));
  }
}

describe('raw names (a name of any bytes as a string and back)', () => {
  it('the binding and raw-names.ts agree on every probe and 20,000 random byte strings, and map them back exactly', () => {
    let count = 0;
    for (const bytes of samples()) {
      const name = decodeKernelName(bytes);
      assert.equal(name, decodeRawName(bytes), `decoding ${bytes.toString('hex')}`);
      assert.ok(rawName(name).equals(bytes), `${bytes.toString('hex')} back as ${rawName(name).toString('hex')}`);
      assert.equal(rawLength(name), bytes.length);
      const out = Buffer.alloc(bytes.length + 2);
      assert.equal(writeRawName(out, name, 1), bytes.length);
      assert.ok(out.subarray(1, 1 + bytes.length).equals(bytes));
      assert.ok(isRawName(name), bytes.toString('hex'));
      count++;
    }
    assert.ok(count > 30_000);
  });

  it('valid UTF-8 stays as it is; the characters the escapes use, and every other byte, are escaped', () => {
    assert.equal(decodeKernelName(Buffer.from('naïve 😀')), 'naïve 😀');
    assert.equal(decodeKernelName(Buffer.from([0x63, 0x61, 0x66, 0xe9])), 'caf\uf7e9');
    assert.equal(decodeKernelName(Buffer.from('\uf780')), '\uf7ef\uf79e\uf780');
    assert.equal(decodeKernelName(Buffer.from([0xed, 0xa0, 0x80])), '\uf7ed\uf7a0\uf780'); // a surrogate
  });

  it('tells strings that stand for the bytes of another name (only the CLI can send them)', () => {
    assert.equal(isRawName('\uf7c3\uf7a9'), false); // the bytes of "é"
    assert.equal(isRawName('a\ud800b'), false);
    assert.equal(isRawName('\udc00'), false);
    assert.equal(isRawName('😀 é caf\uf7e9 \uf7ff'), true);
  });
});
