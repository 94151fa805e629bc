import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { logger } from '../../common/log';
import type { CheckpointResult } from '../master-state';
import type { CheckpointDirResult, CheckpointJob } from './checkpoint-worker';
import type { LogWriter } from './log-writer';
import { checkpointPath } from './meta-dir';
import { purgeMetaDir } from './purge';

const log = logger('checkpoint');

export interface CheckpointPolicy {
  /** Checkpoint after this many transactions since the last one. */
  everyTxns: number;
  /** ...or after this many seconds, if anything changed. */
  everySeconds: number;
}

/**
 * Decides when to checkpoint and runs one at a time: rolls the log so the checkpoint covers
 * exactly the closed segments, lets a worker thread build and write the image, then purges
 * what is no longer needed. A directory the checkpoint cannot be written to is dropped like a
 * failed log directory.
 */
export class Checkpointer {
  private running: Promise<CheckpointResult> | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly writer: LogWriter,
    private readonly policy: CheckpointPolicy,
    /** Txid of the newest checkpoint on disk. */
    public lastTxid: number,
  ) {
    this.timer = setInterval(() => this.maybeRun(true), policy.everySeconds * 1000);
    this.timer.unref();
  }

  /** Called after each commit: starts a checkpoint in the background when one is due. */
  maybeRun(periodic = false): void {
    if (this.running) return;
    const behind = this.writer.durableTxid - this.lastTxid;
    if (behind >= this.policy.everyTxns || (periodic && behind > 0)) {
      this.checkpoint().catch((err: Error) => log.error(`background checkpoint failed: ${err.message}`));
    }
  }

  /** A checkpoint covering everything durable now; waits for one already running first. */
  async checkpoint(): Promise<CheckpointResult> {
    while (this.running) await this.running.catch(() => undefined);
    if (this.writer.durableTxid === this.lastTxid && this.lastTxid > 0) return this.existing();
    this.running = this.run();
    try {
      return await this.running;
    } finally {
      this.running = null;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async run(): Promise<CheckpointResult> {
    const started = performance.now();
    const txid = await this.writer.roll();
    const dirs = this.writer.healthyPaths();
    // The worker's writes and syncs share the disk: log writes meanwhile must not block the
    // event loop behind them.
    const results = await this.writer.besideOtherDiskWork(() => runWorker({ dirs, txid }));
    let bytes = 0;
    for (const r of results) {
      if (r.error) this.writer.fail(r.dir, new Error(`checkpoint write failed: ${r.error}`));
      else bytes = r.bytes;
    }
    if (!results.some((r) => !r.error)) throw new Error(`checkpoint ${txid} could not be written anywhere`);
    this.lastTxid = txid;
    for (const dir of this.writer.healthyPaths()) {
      try {
        purgeMetaDir(dir);
      } catch (err) {
        log.warn(`purge of ${dir} failed: ${(err as Error).message}`);
      }
    }
    const durationMs = performance.now() - started;
    log.info(`checkpoint ${txid} written (${bytes} bytes, ${durationMs.toFixed(0)} ms)`);
    return { txid, bytes, durationMs };
  }

  /** Nothing changed since the newest checkpoint: report it instead of writing it again. */
  private existing(): CheckpointResult {
    for (const dir of this.writer.healthyPaths()) {
      try {
        return { txid: this.lastTxid, bytes: fs.statSync(checkpointPath(dir, this.lastTxid)).size, durationMs: 0 };
      } catch {
        // not in this directory: try the next
      }
    }
    return { txid: this.lastTxid, bytes: 0, durationMs: 0 };
  }
}

function runWorker(job: CheckpointJob): Promise<CheckpointDirResult[]> {
  return new Promise((resolve, reject) => {
    const w = new Worker(path.join(__dirname, 'checkpoint-worker.js'), { workerData: job });
    w.once('message', (m: CheckpointDirResult[]) => resolve(m));
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`checkpoint worker exited with code ${code}`)));
  });
}
