const MIN_CAPACITY = 16;

/**
 * A first-in, first-out queue on a ring buffer, for the worker's local queue. Its storage follows
 * the jobs it holds now, never the jobs it has held: an array consumed from a moving head is reset
 * only when it runs empty, and a queue that is refilled before it empties (the local queue's whole
 * point) never does, so it kept every job it ever started (58,000 entries after 6 s, for about 300
 * live ones). Here a taken slot is cleared at once, the buffer doubles when full, and halves once
 * it is a quarter full, so it holds at most four times the live count (or MIN_CAPACITY), and
 * growing and shrinking cost O(1) per item over time.
 */
export class RingQueue<T> {
  /** Capacity is a power of two, so an index wraps with a mask instead of a division. */
  private slots: Array<T | undefined> = new Array(MIN_CAPACITY);
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  /** Slots the buffer has allocated; for tests and metrics. */
  get capacity(): number {
    return this.slots.length;
  }

  push(item: T): void {
    if (this.count === this.slots.length) this.resize(this.slots.length * 2);
    this.slots[(this.head + this.count) & (this.slots.length - 1)] = item;
    this.count += 1;
  }

  /** Takes the oldest item, or undefined when empty. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.slots[this.head];
    // Cleared so that a started job is not kept alive by the queue it left.
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) & (this.slots.length - 1);
    this.count -= 1;
    if (this.slots.length > MIN_CAPACITY && this.count <= this.slots.length / 4) this.resize(this.slots.length / 2);
    return item;
  }

  /** Takes every item, oldest first, and leaves the queue empty at its smallest size. */
  drain(): T[] {
    const items: T[] = [];
    for (let i = 0; i < this.count; i += 1) items.push(this.slots[(this.head + i) & (this.slots.length - 1)] as T);
    this.slots = new Array(MIN_CAPACITY);
    this.head = 0;
    this.count = 0;
    return items;
  }

  private resize(capacity: number): void {
    const slots: Array<T | undefined> = new Array(capacity);
    for (let i = 0; i < this.count; i += 1) slots[i] = this.slots[(this.head + i) & (this.slots.length - 1)];
    this.slots = slots;
    this.head = 0;
  }
}
