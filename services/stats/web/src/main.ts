// The dashboard: a scope picked from the parks, provinces, cities and
// sectors; its summary kept live through WatchSummary; and, refreshed at
// each new registry revision, parks ranked by a metric, relocation flows,
// the branch footprint and a time series with growth on the year before.
// Everything is read from the stats service over grpc-web.

import "./app.css";

import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  Granularity,
  ParkMetric,
  RegionLevel,
  type Scope,
  SeriesMetric,
  StatsService,
  type Summary,
  WatchSummaryRequestSchema,
} from "./gen/zgc/stats/v1/stats_service_pb.js";
import type { Location } from "./gen/zgc/type/v1/location_pb.js";
import { bars, columns, sankey } from "./charts.js";
import { KINDS, type Picked, describe, fromFragment, isKind, toFragment, toScope } from "./scope.js";

/** The service to read: `?api=http://host:port` for a page served elsewhere, else this page's origin. */
const api = new URLSearchParams(location.search).get("api") ?? location.origin;
const client = createClient(StatsService, createGrpcWebTransport({ baseUrl: api }));

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node as T;
}

const number = new Intl.NumberFormat("en-US");
const fmt = (v: bigint | number) => number.format(v);
const percent = (v: number) => `${v > 0 ? "+" : ""}${v.toFixed(1)}%`;
const place = (l: Location | undefined) => (l ? (l.city ? `${l.city}, ${l.province}` : l.province) : "?");

/** The summary's figures, in the order shown. */
const FIGURES: [keyof Summary & string, string][] = [
  ["parkCount", "Parks"],
  ["companyCount", "Companies"],
  ["branchCount", "Branches"],
  ["employees", "Employees"],
  ["investmentCny", "Investment (CNY)"],
  ["highTechCompanyCount", "High-tech companies"],
  ["listedCompanyCount", "Listed companies"],
  ["relocatedInCount", "Relocated in"],
  ["relocatedOutCount", "Relocated out"],
];

const PARK_METRICS: [ParkMetric, string][] = [
  [ParkMetric.COMPANY_COUNT, "companies"],
  [ParkMetric.EMPLOYEES, "employees"],
  [ParkMetric.INVESTMENT, "investment"],
  [ParkMetric.REVENUE, "revenue"],
  [ParkMetric.REVENUE_GROWTH, "revenue growth"],
];

const SERIES_METRICS: [SeriesMetric, string][] = [
  [SeriesMetric.COMPANIES_FOUNDED, "companies founded"],
  [SeriesMetric.BRANCHES_OPENED, "branches opened"],
  [SeriesMetric.RELOCATIONS_IN, "relocations"],
  [SeriesMetric.REVENUE, "revenue"],
  [SeriesMetric.OUTPUT_VALUE, "output value"],
];

/** What the page shows now. */
const state = {
  picked: fromFragment(location.hash),
  parkNames: new Map<string, string>(),
  /** Values the picker suggests, by kind. */
  suggestions: new Map<string, string[]>(),
  /** The latest year with figures, for revenue rankings. */
  latestYear: 0,
  revision: 0n,
  watch: new AbortController(),
};

function option(select: HTMLSelectElement, value: string, label: string) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  select.append(o);
}

/**
 * Chart loads in flight, on `<body data-pending>`: 0 once every chart
 * shows the latest revision (what a test, or a screenshot, waits for).
 */
let pending = 0;
function track(load: Promise<void>): Promise<void> {
  pending += 1;
  document.body.dataset.pending = String(pending);
  return load.finally(() => {
    pending -= 1;
    document.body.dataset.pending = String(pending);
  });
}

function setChart(id: string, content: Node | string) {
  const box = byId(id);
  box.replaceChildren(typeof content === "string" ? Object.assign(document.createElement("p"), { className: "empty", textContent: content }) : content);
}

function showError(where: string, e: unknown) {
  setChart(where, `Could not load: ${e instanceof Error ? e.message : String(e)}`);
}

/** The scope as `kind=value` (`all` alone), on `#figures[data-scope]`. */
const scopeKey = (p: Picked) => (p.kind === "all" ? "all" : `${p.kind}=${p.value}`);

function renderSummary(s: Summary, picked: Picked) {
  const list = byId("figures");
  list.dataset.scope = scopeKey(picked);
  list.replaceChildren(
    ...FIGURES.map(([field, label]) => {
      const item = document.createElement("div");
      item.dataset.field = field;
      const value = s[field] as bigint;
      const dt = Object.assign(document.createElement("dt"), { textContent: label });
      const dd = Object.assign(document.createElement("dd"), { textContent: fmt(value) });
      dd.dataset.value = value.toString();
      item.append(dt, dd);
      return item;
    }),
  );
  setRevision(s.asOfRevision);
}

function setRevision(revision: bigint) {
  const node = byId("revision");
  node.textContent = revision.toString();
  node.dataset.value = revision.toString();
}

function setLive(text: string) {
  byId("live").textContent = text;
}

async function renderRanking(scope: Picked) {
  const metric = Number(byId<HTMLSelectElement>("metric").value) as ParkMetric;
  const province = scope.kind === "province" ? scope.value : scope.kind === "city" ? (scope.value.split("/")[0] ?? "") : "";
  const yearly = metric === ParkMetric.REVENUE || metric === ParkMetric.REVENUE_GROWTH;
  try {
    const r = await client.rankParks({ metric, province, limit: 10, year: yearly ? state.latestYear : 0 });
    const items = r.entries.map((e) => ({
      label: e.displayName || e.park,
      value: e.value,
      text: metric === ParkMetric.REVENUE_GROWTH ? percent(e.value) : fmt(Math.round(e.value)),
    }));
    const what = PARK_METRICS.find(([m]) => m === metric)?.[1] ?? "";
    const where = province ? ` in ${province}` : "";
    const when = yearly ? ` (${state.latestYear})` : "";
    setChart("ranking-chart", items.length ? bars(items, `Parks${where} ranked by ${what}${when}`) : "No park has this figure.");
  } catch (e) {
    showError("ranking-chart", e);
  }
}

async function renderFlows(scope: Picked) {
  const province = scope.kind === "province" ? scope.value : scope.kind === "city" ? (scope.value.split("/")[0] ?? "") : "";
  byId("flows-note").textContent = province
    ? `Companies whose last move ended in ${province}, by province of origin (top 12).`
    : "Companies' relocations between provinces, all companies (top 12).";
  try {
    const r = await client.getRelocationFlows({ level: RegionLevel.PROVINCE, toProvince: province });
    const flows = r.flows.slice(0, 12).map((f) => ({ from: place(f.from), to: place(f.to), count: Number(f.count) }));
    setChart("flows-chart", flows.length ? sankey(flows, "Relocation flows, origin to destination") : "No relocation recorded.");
  } catch (e) {
    showError("flows-chart", e);
  }
}

async function renderFootprint(scope: Scope) {
  try {
    const r = await client.getBranchFootprint({ parentScope: scope, level: RegionLevel.CITY });
    const items = r.regions.slice(0, 12).map((g) => ({
      label: place(g.location),
      value: Number(g.branchCount),
      text: fmt(g.branchCount),
    }));
    setChart("footprint-chart", items.length ? bars(items, "Branches by city (top 12)") : "No branch of a company in this scope.");
  } catch (e) {
    showError("footprint-chart", e);
  }
}

async function renderSeries(scope: Scope) {
  const metric = Number(byId<HTMLSelectElement>("series-metric").value) as SeriesMetric;
  try {
    const r = await client.getTimeSeries({ scope, metric, granularity: Granularity.YEAR });
    const byYear = new Map(r.points.map((p) => [p.period?.year ?? 0, p.value]));
    const years = [...byYear.keys()].filter((y) => y > 0);
    if (years.length === 0) {
      setChart("series-chart", "Nothing dated in this scope.");
      return;
    }
    // The last 20 years that have figures, with the empty years between.
    const last = Math.max(...years);
    const first = Math.max(Math.min(...years), last - 19);
    const items = [];
    for (let year = first; year <= last; year++) {
      const value = byYear.get(year) ?? 0;
      const before = byYear.get(year - 1) ?? 0;
      items.push({
        label: String(year),
        value,
        text: fmt(Math.round(value)),
        note: before !== 0 ? percent(((value - before) / before) * 100) : "",
      });
    }
    const what = SERIES_METRICS.find(([m]) => m === metric)?.[1] ?? "";
    setChart("series-chart", columns(items, `${what} by year, with growth on the year before`));
  } catch (e) {
    showError("series-chart", e);
  }
}

/** Redraws the charts that are not live: at a new scope and at each new revision. */
function refreshCharts(picked: Picked, scope: Scope) {
  void track(renderRanking(picked));
  void track(renderFlows(picked));
  void track(renderFootprint(scope));
  void track(renderSeries(scope));
}

/** Follows the scope's summary until the scope changes, resuming after errors. */
async function watch(picked: Picked, scope: Scope, signal: AbortSignal) {
  let backoff = 500;
  while (!signal.aborted) {
    try {
      setLive("connecting");
      const request = create(WatchSummaryRequestSchema, {
        scope,
        minInterval: durationFromMs(500),
        minRevision: state.revision,
      });
      for await (const summary of client.watchSummary(request, { signal })) {
        backoff = 500;
        setLive("live");
        renderSummary(summary, picked);
        if (summary.asOfRevision !== state.revision) {
          state.revision = summary.asOfRevision;
          refreshCharts(picked, scope);
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      setLive(`reconnecting (${e instanceof Error ? e.message : String(e)})`);
    }
    await new Promise((done) => setTimeout(done, backoff));
    backoff = Math.min(backoff * 2, 10_000);
  }
}

function show(picked: Picked) {
  state.watch.abort();
  state.watch = new AbortController();
  state.picked = picked;
  state.revision = 0n;
  byId<HTMLSelectElement>("kind").value = picked.kind;
  byId<HTMLInputElement>("value").value = picked.value;
  suggest(picked.kind);
  byId("scope-name").textContent = describe(picked, state.parkNames);
  const figures = byId("figures");
  figures.replaceChildren();
  delete figures.dataset.scope;
  const scope = toScope(picked);
  if (typeof scope === "string") {
    byId("figures").replaceChildren(Object.assign(document.createElement("p"), { className: "error", textContent: scope }));
    return;
  }
  void watch(picked, scope, state.watch.signal);
}

function suggest(kind: string) {
  const list = byId("values");
  list.replaceChildren(
    ...(state.suggestions.get(kind) ?? []).map((v) => {
      const o = document.createElement("option");
      o.value = v;
      o.label = state.parkNames.get(v) ?? v;
      return o;
    }),
  );
  byId<HTMLInputElement>("value").disabled = kind === "all";
}

/** Reads what the picker suggests: the parks, and the provinces, cities and sectors seen in the data. */
async function loadSuggestions() {
  const everything = toScope({ kind: "all", value: "" }) as Scope;
  const [parks, all, flows, footprint] = await Promise.all([
    client.rankParks({ metric: ParkMetric.COMPANY_COUNT, limit: 100 }),
    client.getSummary({ scope: everything }),
    client.getRelocationFlows({ level: RegionLevel.CITY }),
    client.getBranchFootprint({ parentScope: everything, level: RegionLevel.CITY }),
  ]);
  for (const e of parks.entries) state.parkNames.set(e.park, e.displayName || e.park);
  const parkList = [...state.parkNames.keys()];
  const locations = [...flows.flows.flatMap((f) => [f.from, f.to]), ...footprint.regions.map((r) => r.location)];
  const provinces = new Set(all.relocationOrigins.map((o) => o.province));
  const cities = new Set<string>();
  for (const l of locations) {
    if (!l) continue;
    provinces.add(l.province);
    if (l.city) cities.add(`${l.province}/${l.city}`);
  }
  state.suggestions.set("park", parkList);
  state.suggestions.set("park-tree", parkList);
  state.suggestions.set("province", [...provinces].sort());
  state.suggestions.set("city", [...cities].sort());
  state.suggestions.set("sector", all.sectors.map((s) => s.sector));
  state.latestYear = Math.max(0, ...all.figuresByYear.map((f) => f.year));
}

function init() {
  const kind = byId<HTMLSelectElement>("kind");
  for (const k of KINDS) option(kind, k.kind, k.label);
  const metric = byId<HTMLSelectElement>("metric");
  for (const [m, label] of PARK_METRICS) option(metric, String(m), label);
  const seriesMetric = byId<HTMLSelectElement>("series-metric");
  for (const [m, label] of SERIES_METRICS) option(seriesMetric, String(m), label);

  kind.addEventListener("change", () => {
    suggest(kind.value);
    byId<HTMLInputElement>("value").value = "";
  });
  byId<HTMLFormElement>("scope").addEventListener("submit", (event) => {
    event.preventDefault();
    const k = kind.value;
    if (!isKind(k)) return;
    const picked = { kind: k, value: k === "all" ? "" : byId<HTMLInputElement>("value").value.trim() };
    // The fragment is the view's address; changing it shows it.
    location.hash = toFragment(picked);
  });
  window.addEventListener("hashchange", () => show(fromFragment(location.hash)));
  metric.addEventListener("change", () => void track(renderRanking(state.picked)));
  seriesMetric.addEventListener("change", () => {
    const scope = toScope(state.picked);
    if (typeof scope !== "string") void track(renderSeries(scope));
  });

  document.body.dataset.pending = "0";
  void track(loadSuggestions())
    .catch((e) => setLive(`could not read the scopes (${e instanceof Error ? e.message : String(e)})`))
    .finally(() => show(state.picked));
}

init();
