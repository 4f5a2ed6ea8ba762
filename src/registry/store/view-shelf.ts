/**
 * The published views: in memory for `published(node)`, on disk as view segments in `run/ibms/views/`
 * (one file per publish, see run-files.ts). The run state's `published` map (node → version, segment) is
 * the truth, journaled with each publish; a segment no node refers to any more is deleted, and a checkpoint
 * may merge the live views of many segments into one.
 */
import type { RunState } from './store-ops.js';
import { listSegments, readSegment, removeSegment, writeSegment } from './run-files.js';
import type { PublishedView, StoreLogger } from './types.js';

/** Merge segments at a checkpoint when there are more than this many… */
const COMPACT_MIN_SEGMENTS = 16;
/** …or when their dead weight exceeds their live weight and this many characters. */
const COMPACT_MIN_DEAD_CHARS = 4 * 1024 * 1024;

interface Segment {
  /** Nodes whose current view is in this segment. */
  live: Set<string>;
  /** Views written into it. */
  count: number;
  /** Its size in characters. */
  chars: number;
}

export class ViewShelf {
  readonly #dir: string;
  #views = new Map<string, { view: PublishedView; segment: string }>();
  #segments = new Map<string, Segment>();
  #written = new Map<string, Segment>();

  private constructor(dir: string) {
    this.#dir = dir;
  }

  /**
   * Loads the views `run.published` names. A view whose segment is missing or corrupt is dropped from
   * `run.published` with a warning (its node becomes pending again); unreferenced segments are deleted.
   */
  static load(dir: string, run: RunState, log: StoreLogger | undefined): ViewShelf {
    const shelf = new ViewShelf(dir);
    const bySegment = new Map<string, Map<string, number>>();
    for (const [node, ref] of run.published) {
      let m = bySegment.get(ref.segment);
      if (!m) bySegment.set(ref.segment, (m = new Map()));
      m.set(node, ref.version);
    }
    for (const [segment, wanted] of bySegment) {
      let found: ReturnType<typeof readSegment> | undefined;
      try {
        found = readSegment(dir, segment, wanted);
      } catch (err) {
        log?.warn({ err, segment }, `published views of ${wanted.size} node(s) lost (${(err as Error).message}); they are pending again`);
      }
      const seg: Segment = { live: new Set(), count: found?.count ?? 0, chars: found?.chars ?? 0 };
      for (const node of wanted.keys()) {
        const view = found?.views.get(node);
        if (view === undefined) {
          run.published.delete(node);
          if (found) log?.warn({ node, segment }, `published view of ${node} missing from segment ${segment}; it is pending again`);
          continue;
        }
        shelf.#views.set(node, { view, segment });
        seg.live.add(node);
      }
      if (seg.live.size > 0) shelf.#segments.set(segment, seg);
    }
    shelf.collect(run);
    return shelf;
  }

  get(node: string): PublishedView | undefined {
    return this.#views.get(node)?.view;
  }

  /** Writes the segment of a publish (before its journal record). */
  write(segment: string, views: readonly PublishedView[]): void {
    const chars = writeSegment(this.#dir, segment, views);
    this.#written.set(segment, { live: new Set(), count: views.length, chars });
  }

  /** Removes a segment whose publish was not journaled. */
  discard(segment: string): void {
    this.#written.delete(segment);
    removeSegment(this.#dir, segment);
  }

  /** Makes a written segment's views current (after its journal record); frees segments left without views. */
  commit(segment: string, views: readonly PublishedView[]): void {
    const seg = this.#written.get(segment) ?? { live: new Set<string>(), count: views.length, chars: 0 };
    this.#written.delete(segment);
    this.#segments.set(segment, seg);
    for (const v of views) {
      const prev = this.#views.get(v.node);
      this.#views.set(v.node, { view: v, segment });
      seg.live.add(v.node);
      if (prev && prev.segment !== segment) this.#release(v.node, prev.segment);
    }
  }

  /** Forgets a removed node's view (its removal is journaled). */
  drop(node: string): void {
    const cur = this.#views.get(node);
    if (!cur) return;
    this.#views.delete(node);
    this.#release(node, cur.segment);
  }

  /**
   * At a checkpoint: when the segments hold much dead weight, writes every live view into one segment named
   * `segment` and points `run.published` at it (versions unchanged). The old files go at `collect`, after the
   * checkpoint that stops naming them is written.
   */
  compactIfWorth(segment: string, run: RunState): void {
    let live = 0;
    let dead = 0;
    for (const s of this.#segments.values()) {
      const part = s.count > 0 ? s.chars * (s.live.size / s.count) : 0;
      live += part;
      dead += s.chars - part;
    }
    if (this.#segments.size <= COMPACT_MIN_SEGMENTS && !(dead > live && dead > COMPACT_MIN_DEAD_CHARS)) return;
    const views = [...this.#views.values()].map((v) => v.view);
    const chars = writeSegment(this.#dir, segment, views);
    const seg: Segment = { live: new Set(), count: views.length, chars };
    for (const v of views) {
      this.#views.set(v.node, { view: v, segment });
      seg.live.add(v.node);
      const ref = run.published.get(v.node);
      if (ref) ref.segment = segment;
    }
    this.#segments = new Map([[segment, seg]]);
  }

  /** Deletes every segment file that no reference in `run.published` names. */
  collect(run: RunState): void {
    const used = new Set([...run.published.values()].map((r) => r.segment));
    for (const s of listSegments(this.#dir)) {
      if (!used.has(s) && !this.#written.has(s)) removeSegment(this.#dir, s);
    }
    for (const s of [...this.#segments.keys()]) if (!used.has(s)) this.#segments.delete(s);
  }

  #release(node: string, segment: string): void {
    const seg = this.#segments.get(segment);
    if (!seg) return;
    seg.live.delete(node);
    if (seg.live.size === 0) {
      this.#segments.delete(segment);
      removeSegment(this.#dir, segment);
    }
  }
}
