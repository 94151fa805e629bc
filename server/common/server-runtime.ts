/**
 * The environment chunkfs starts its long-running processes in (master, chunkservers, mount):
 * glibc's malloc keeps the memory a process has touched for use again. Why: on the virtual
 * machines this project runs on, the first touch of each fresh 4 KiB page costs 12-17 µs (a
 * page fault the hypervisor takes part in; 0.1 µs for a page touched before), and by default
 * glibc gives buffers over 128 KiB back to the kernel at free, and its heap's free top past
 * 128 KiB too. Through `chunkfs up`, a warm mount took 17-21 fresh pages per 4 KiB file
 * written, 5-6 with these (test/up.test.ts). The price: each process keeps up to 64 MiB of
 * freed heap resident once it has used it.
 * (V8's young generation at 16 MiB, tried with it, took faults per unlink under 1 but cold reads
 * of small files 20-40% slower: not adopted.)
 */
const MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=67108864';

/** `env` with the malloc tunables added to any GLIBC_TUNABLES it has (an operator's own come last and win). */
export function serverEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const own = env.GLIBC_TUNABLES;
  return { ...env, GLIBC_TUNABLES: own ? `${MALLOC_TUNABLES}:${own}` : MALLOC_TUNABLES };
}
