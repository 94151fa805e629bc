import * as net from 'net';
import type { CallBatch } from '../generated/chunkfs/master/CallBatch';
import type { ReplyBatch__Output } from '../generated/chunkfs/master/ReplyBatch';
import { FsError, toFsError } from '../server/common/fs-error';
import { decodeReplies, encodeCalls, FrameReader } from '../server/common/session-frames';

export interface SessionLinkEvents {
  replies(batch: ReplyBatch__Output): void;
  /** Once, when the connection fails or ends (also after end(): calls still unanswered then fail). */
  broken(err: FsError): void;
}

/**
 * One connection of a master session (server/common/session-frames.ts): batches sent before
 * the master's session port is known and the connection is up wait for it, in order (also
 * when end() comes first: they are sent, then this side ends).
 */
export class SessionLink {
  private socket: net.Socket | null = null;
  private waiting: Buffer[] = [];
  private ending = false;
  private failed = false;

  constructor(
    host: string,
    port: Promise<number>,
    /** Names the master in errors, e.g. "master 127.0.0.1:9000". */
    private readonly peer: string,
    private readonly events: SessionLinkEvents,
  ) {
    port.then(
      (p) => this.connect(host, p),
      (err: unknown) => this.fail(toFsError(err)),
    );
  }

  send(batch: CallBatch): void {
    const frame = encodeCalls(batch);
    if (this.socket) this.socket.write(frame);
    else this.waiting.push(frame);
  }

  /** Ends this side: the master answers the calls in flight, then ends its side. */
  end(): void {
    this.ending = true;
    this.socket?.end();
  }

  private connect(host: string, port: number): void {
    if (this.failed || (this.ending && this.waiting.length === 0)) return;
    const frames = new FrameReader();
    const socket = net.connect({ host, port, noDelay: true });
    socket.on('data', (bytes: Buffer) => {
      try {
        for (const message of frames.push(bytes)) this.events.replies(decodeReplies(message));
      } catch (err) {
        this.fail(new FsError('EIO', `${this.peer} sent a bad session frame: ${(err as Error).message}`));
      }
    });
    socket.on('error', (err) => this.fail(new FsError('EIO', `${this.peer} unreachable (${err.message})`)));
    socket.on('end', () => this.fail(new FsError('EIO', `${this.peer} ended the session`)));
    socket.on('close', () => this.fail(new FsError('EIO', `${this.peer} closed the session`)));
    for (const frame of this.waiting) socket.write(frame);
    this.waiting = [];
    this.socket = socket;
    if (this.ending) socket.end();
  }

  private fail(err: FsError): void {
    if (this.failed) return;
    this.failed = true;
    this.socket?.destroy();
    this.events.broken(err);
  }
}
