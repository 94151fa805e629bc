/**
 * How chunkfs starts its long-running processes (master, chunkservers, mount): Node flags and
 * environment that keep the memory a process has touched for use again. Why: on the virtual
 * machines this project runs on, the first touch of each fresh 4 KiB page costs 13-17 µs (a
 * page fault the hypervisor takes part in; 0.1 µs for a page touched before). By default V8's
 * young generation starts with 1 MiB semi-spaces, which it gives back and takes anew as it
 * resizes, and glibc gives buffers over 128 KiB back to the kernel at free. Measured over loops
 * of 1,000 (master and mount together): an unlink touched 6-7 fresh pages, a mkdir 5-6, a 4 KiB
 * create 23-27 plus 6-8 in each chunkserver; with these, under 1, under 1, and 5 plus 2. The
 * price: each process keeps up to 32 MiB of young generation and 64 MiB of freed heap resident
 * once it has used them.
 */
export const SERVER_NODE_ARGS: readonly string[] = ['--min-semi-space-size=16'];

/** glibc's malloc: buffers up to 4 MiB come from the heap, and up to 64 MiB of it freed stays. */
const MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=67108864';

/** `env` with the malloc tunables added to any GLIBC_TUNABLES it has (an operator's own come last and win). */
export function serverEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const own = env.GLIBC_TUNABLES;
  return { ...env, GLIBC_TUNABLES: own ? `${MALLOC_TUNABLES}:${own}` : MALLOC_TUNABLES };
}
