// The page's pictures, drawn as SVG with no library. Every mark carries
// its figure as text, so a chart reads without colour (in greyscale, in
// print, to a screen reader through its title); the viewBox scales each
// chart to the width it is given, a phone's included.

const SVG = "http://www.w3.org/2000/svg";

type Attrs = Record<string, string | number>;

function el<K extends keyof SVGElementTagNameMap>(
  name: K,
  attrs: Attrs = {},
  text?: string,
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, String(v));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function svg(width: number, height: number, label: string): SVGSVGElement {
  const root = el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": label,
    preserveAspectRatio: "xMinYMin meet",
  });
  root.append(el("title", {}, label));
  return root;
}

/** Shortens `s` to `max` characters, marking the cut. */
function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export interface Bar {
  label: string;
  value: number;
  /** The figure as shown beside the bar. */
  text: string;
}

/** Horizontal bars, longest first as given, each labelled and numbered. */
export function bars(items: Bar[], label: string): SVGSVGElement {
  const row = 26;
  const width = 640;
  const labelWidth = 240;
  const textWidth = 100;
  const root = svg(width, Math.max(row, items.length * row), label);
  const max = Math.max(1, ...items.map((i) => Math.abs(i.value)));
  items.forEach((item, n) => {
    const y = n * row;
    const length = ((width - labelWidth - textWidth) * Math.abs(item.value)) / max;
    const g = el("g", { class: "bar" });
    g.append(
      el("title", {}, `${item.label}: ${item.text}`),
      el("text", { x: labelWidth - 8, y: y + row / 2, class: "label", "text-anchor": "end" }, clip(item.label, 31)),
      el("rect", { x: labelWidth, y: y + 4, width: Math.max(1, length), height: row - 8, class: "mark" }),
      el("text", { x: labelWidth + length + 6, y: y + row / 2, class: "figure" }, item.text),
    );
    root.append(g);
  });
  return root;
}

export interface Column {
  label: string;
  value: number;
  text: string;
  /** A second line under the column, e.g. its growth on the year before. */
  note?: string;
}

/** Vertical columns in order (a time series), each with its figure above and its note below. */
export function columns(items: Column[], label: string): SVGSVGElement {
  const width = 640;
  const top = 22;
  const plot = 180;
  const bottom = 50;
  const root = svg(width, top + plot + bottom, label);
  const max = Math.max(1, ...items.map((i) => Math.abs(i.value)));
  const step = width / Math.max(1, items.length);
  const barWidth = Math.max(2, step * 0.7);
  // Label every column when they fit, else every k-th (the others carry
  // their figure in their title).
  const every = Math.max(1, Math.ceil(items.length / 24));
  root.append(el("line", { x1: 0, x2: width, y1: top + plot, y2: top + plot, class: "axis" }));
  items.forEach((item, n) => {
    const h = (plot * Math.abs(item.value)) / max;
    const x = n * step + (step - barWidth) / 2;
    const cx = n * step + step / 2;
    const g = el("g", { class: "column" });
    g.append(
      el("title", {}, `${item.label}: ${item.text}${item.note ? ` (${item.note})` : ""}`),
      el("rect", { x, y: top + plot - h, width: barWidth, height: Math.max(1, h), class: "mark" }),
    );
    if (n % every === 0) {
      g.append(
        el("text", { x: cx, y: top + plot - h - 5, class: "figure", "text-anchor": "middle" }, item.text),
        el("text", { x: cx, y: top + plot + 15, class: "label", "text-anchor": "middle" }, item.label),
      );
      // Notes are wider than figures: on alternate rows when crowded.
      if (item.note) {
        const low = items.length > 12 && n % (2 * every) !== 0;
        g.append(el("text", { x: cx, y: top + plot + (low ? 42 : 30), class: "note", "text-anchor": "middle" }, item.note));
      }
    }
    root.append(g);
  });
  return root;
}

export interface Flow {
  from: string;
  to: string;
  count: number;
}

/**
 * A Sankey diagram: origins on the left, destinations on the right, each
 * band as wide as its count and labelled with it. Origins and
 * destinations are stacked largest first.
 */
export function sankey(flows: Flow[], label: string): SVGSVGElement {
  const width = 640;
  const nodeWidth = 14;
  const gap = 10;
  const labelSpace = 150;
  const total = flows.reduce((s, f) => s + f.count, 0) || 1;
  const totals = (key: "from" | "to") => {
    const m = new Map<string, number>();
    for (const f of flows) m.set(f[key], (m.get(f[key]) ?? 0) + f.count);
    return [...m.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  };
  const left = totals("from");
  const right = totals("to");
  const rows = Math.max(left.length, right.length);
  const height = Math.max(120, 22 * rows + gap * rows + 40);
  const scale = (height - 20 - gap * (rows - 1)) / total;
  const root = svg(width, height, label);

  const place = (nodes: [string, number][]) => {
    const at = new Map<string, { y: number; used: number }>();
    let y = 10;
    for (const [name, n] of nodes) {
      at.set(name, { y, used: 0 });
      y += n * scale + gap;
    }
    return at;
  };
  const lefts = place(left);
  const rights = place(right);
  const x0 = labelSpace;
  const x1 = width - labelSpace;

  const sorted = [...flows].sort((a, b) => b.count - a.count);
  for (const f of sorted) {
    const a = lefts.get(f.from);
    const b = rights.get(f.to);
    if (!a || !b) continue;
    const w = Math.max(1, f.count * scale);
    const ya = a.y + a.used + w / 2;
    const yb = b.y + b.used + w / 2;
    a.used += f.count * scale;
    b.used += f.count * scale;
    const mid = (x0 + nodeWidth + x1) / 2;
    const g = el("g", { class: "band" });
    g.append(
      el("title", {}, `${f.from} → ${f.to}: ${f.count}`),
      el("path", {
        d: `M${x0 + nodeWidth},${ya} C${mid},${ya} ${mid},${yb} ${x1},${yb}`,
        "stroke-width": w,
        class: "flow",
      }),
      el("text", { x: mid, y: (ya + yb) / 2 + 4, class: "figure band-figure", "text-anchor": "middle" }, String(f.count)),
    );
    root.append(g);
  }
  const nodes = (list: [string, number][], at: Map<string, { y: number }>, x: number, anchor: string, tx: number) => {
    for (const [name, n] of list) {
      const y = at.get(name)?.y ?? 0;
      const h = Math.max(2, n * scale);
      const g = el("g", { class: "node" });
      g.append(
        el("title", {}, `${name}: ${n}`),
        el("rect", { x, y, width: nodeWidth, height: h, class: "mark" }),
        el("text", { x: tx, y: y + h / 2 + 4, class: "label", "text-anchor": anchor }, `${clip(name, 18)} (${n})`),
      );
      root.append(g);
    }
  };
  nodes(left, lefts, x0, "end", x0 - 6);
  nodes(right, rights, x1, "start", x1 + nodeWidth + 6);
  return root;
}
