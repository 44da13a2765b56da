// views/search/virtual-list.js — a list of any length that keeps only the rows near the
// viewport in the DOM (the page scrolls, not the list). Rows may be of any height: each is
// measured once drawn (by key, so expanding or inserting rows keeps the others' heights);
// rows never drawn count as the average. The rule: once the list is scrolled into, the first
// visible row stays where it was on screen whatever is drawn or measured above it (the list
// corrects the scroll position itself; search.css turns the browser's own scroll anchoring off).

/** Rows drawn beyond each edge of the viewport, in pixels, so that scrolling shows no gaps. */
const OVERSCAN_PX = 600;
/** At least this many rows are drawn, so a list starting below the fold still has some. */
const MIN_ROWS = 20;

export class VirtualList {
  #list;
  #keyOf;
  #render;
  #items = [];
  /** key → measured height in px. */
  #heights = new Map();
  /** offsets[i] = top of row i; offsets[n] = the whole height. Null when heights changed. */
  #offsets = null;
  /** key → its element, for the rows in the DOM. */
  #drawn = new Map();
  #frame = 0;
  #width = 0;
  #scrollTarget = null;
  #onViewportChange;
  #resize;

  /**
   * `list` is the (empty) element to fill; `keyOf(item)` names an item uniquely and
   * `render(item)` builds its row element.
   */
  constructor(list, { keyOf, render }) {
    this.#list = list;
    this.#keyOf = keyOf;
    this.#render = render;
    this.#onViewportChange = () => this.update();
    window.addEventListener('scroll', this.#onViewportChange, { passive: true });
    window.addEventListener('resize', this.#onViewportChange);
    this.#resize = new ResizeObserver(() => {
      if (this.#list.clientWidth === this.#width) return;
      // Another width wraps text differently: every height is to be measured again.
      this.#width = this.#list.clientWidth;
      this.#heights.clear();
      this.#offsets = null;
      this.update();
    });
    this.#resize.observe(list);
  }

  /** Shows `items` (in order). `reset` forgets every measured height (a new search). */
  setItems(items, { reset = false } = {}) {
    this.#items = items;
    if (reset) this.#heights.clear();
    this.#offsets = null;
    this.#drawNow();
  }

  /** Builds the row of `key` again (its item's state changed), if it is drawn. */
  refresh(key) {
    const old = this.#drawn.get(key);
    if (!old) return;
    const index = this.#items.findIndex((item) => this.#keyOf(item) === key);
    const row = this.#render(this.#items[index]);
    this.#number(row, index);
    this.#drawn.set(key, row);
    const hadFocus = old.contains(document.activeElement);
    old.replaceWith(row);
    if (hadFocus) row.focus({ preventScroll: true });
    this.#drawNow();
  }

  /** Scrolls the page so that the row of `key` is in view. */
  scrollTo(key) {
    this.#scrollTarget = key;
    this.#drawNow();
  }

  /** Draws again on the next frame (many calls, one draw): after scrolling or a layout change. */
  update() {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.#draw();
    });
  }

  /** Draws at once, so that the DOM shows a change of the items as soon as it is made. */
  #drawNow() {
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    this.#draw();
  }

  destroy() {
    cancelAnimationFrame(this.#frame);
    window.removeEventListener('scroll', this.#onViewportChange);
    window.removeEventListener('resize', this.#onViewportChange);
    this.#resize.disconnect();
  }

  #number(row, index) {
    row.setAttribute('aria-posinset', String(index + 1));
    row.setAttribute('aria-setsize', String(this.#items.length));
  }

  #layout() {
    if (this.#offsets) return this.#offsets;
    let measured = 0;
    let total = 0;
    for (const height of this.#heights.values()) {
      measured += 1;
      total += height;
    }
    const average = measured > 0 ? total / measured : 30;
    const offsets = new Float64Array(this.#items.length + 1);
    this.#items.forEach((item, i) => {
      offsets[i + 1] = offsets[i] + (this.#heights.get(this.#keyOf(item)) ?? average);
    });
    this.#offsets = offsets;
    return offsets;
  }

  /** The first row whose bottom is below `y` (list coordinates). */
  #rowAt(offsets, y) {
    let low = 0;
    let high = this.#items.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (offsets[mid + 1] <= y) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /**
   * The first drawn row still (partly) on screen, and where it is; none while the top of the
   * list is on screen (rows added at the top then push the others down, as the user sees).
   */
  #anchor() {
    if (this.#list.getBoundingClientRect().top >= 0) return null;
    for (const row of this.#drawn.values()) {
      const top = row.getBoundingClientRect().top;
      if (row.isConnected && top + row.offsetHeight > 0) return { row, top };
    }
    return null;
  }

  #draw() {
    const list = this.#list;
    const count = this.#items.length;
    if (count === 0) {
      list.replaceChildren();
      this.#drawn.clear();
      list.style.paddingTop = list.style.paddingBottom = '';
      return;
    }
    let offsets = this.#layout();
    const targetIndex = this.#scrollTarget === null ? -1
      : this.#items.findIndex((item) => this.#keyOf(item) === this.#scrollTarget);
    this.#scrollTarget = null;
    if (targetIndex >= 0) {
      // Jump near the row first, so that it is drawn; once measured it is placed exactly below.
      const listTop = list.getBoundingClientRect().top + window.scrollY;
      window.scrollTo(0, listTop + offsets[targetIndex] - window.innerHeight / 5);
    }
    const anchor = targetIndex >= 0 ? null : this.#anchor();
    const top = -list.getBoundingClientRect().top;
    let first = this.#rowAt(offsets, top - OVERSCAN_PX);
    let last = Math.min(count, this.#rowAt(offsets, top + window.innerHeight + OVERSCAN_PX) + 1);
    if (last - first < MIN_ROWS) {
      last = Math.min(count, first + MIN_ROWS);
      first = Math.max(0, last - MIN_ROWS);
    }

    const wanted = [];
    const drawn = new Map();
    for (let i = first; i < last; i++) {
      const key = this.#keyOf(this.#items[i]);
      const row = this.#drawn.get(key) ?? this.#render(this.#items[i]);
      this.#number(row, i);
      wanted.push(row);
      drawn.set(key, row);
    }
    // Rows that stay are never taken out of the DOM (no flicker, no lost focus or selection).
    const keep = new Set(wanted);
    for (const child of [...list.children]) if (!keep.has(child)) child.remove();
    let cursor = list.firstElementChild;
    for (const row of wanted) {
      if (row === cursor) cursor = cursor.nextElementSibling;
      else list.insertBefore(row, cursor);
    }
    this.#drawn = drawn;

    for (const [key, row] of drawn) {
      const height = row.getBoundingClientRect().height;
      if (this.#heights.get(key) !== height) {
        this.#heights.set(key, height);
        this.#offsets = null;
      }
    }
    offsets = this.#layout();
    list.style.paddingTop = `${offsets[first]}px`;
    list.style.paddingBottom = `${offsets[count] - offsets[last]}px`;

    const target = targetIndex >= 0 ? drawn.get(this.#keyOf(this.#items[targetIndex])) : null;
    if (target) {
      // A fifth down the window: what opens under the row (its context) shows too.
      window.scrollBy(0, target.getBoundingClientRect().top - window.innerHeight / 5);
    } else if (anchor && anchor.row.isConnected) {
      const drift = anchor.row.getBoundingClientRect().top - anchor.top;
      if (Math.abs(drift) >= 0.5) window.scrollBy(0, drift);
    }
  }
}
