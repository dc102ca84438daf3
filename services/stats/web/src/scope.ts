// A scope as the page names it: in its picker and in the address's
// fragment (`#park=parks/zgc`, `#city=Hebei/Baoding`), so a view can be
// linked to and reloaded.

import { create } from "@bufbuild/protobuf";
import { type Scope, ScopeSchema } from "./gen/zgc/stats/v1/stats_service_pb.js";
import { LocationSchema } from "./gen/zgc/type/v1/location_pb.js";

export type Kind = "all" | "park" | "park-tree" | "province" | "city" | "sector";

export interface Picked {
  kind: Kind;
  /** The park's name, the province, `Province/City`, or the sector; empty for `all`. */
  value: string;
}

export const KINDS: { kind: Kind; label: string }[] = [
  { kind: "all", label: "Everything" },
  { kind: "park", label: "Park" },
  { kind: "park-tree", label: "Park and affiliates" },
  { kind: "province", label: "Province" },
  { kind: "city", label: "City" },
  { kind: "sector", label: "Sector" },
];

export function isKind(s: string): s is Kind {
  return KINDS.some((k) => k.kind === s);
}

/** The scope in a fragment such as `#park=parks/zgc`; everything if none. */
export function fromFragment(fragment: string): Picked {
  const text = decodeURIComponent(fragment.replace(/^#/, ""));
  const at = text.indexOf("=");
  const kind = at < 0 ? text : text.slice(0, at);
  const value = at < 0 ? "" : text.slice(at + 1);
  if (isKind(kind) && (kind === "all" || value !== "")) {
    return { kind, value };
  }
  return { kind: "all", value: "" };
}

export function toFragment(p: Picked): string {
  return p.kind === "all" ? "#all" : `#${p.kind}=${encodeURIComponent(p.value)}`;
}

/** The request's scope; an error message if the value cannot make one. */
export function toScope(p: Picked): Scope | string {
  switch (p.kind) {
    case "all":
      return create(ScopeSchema, { selector: { case: "all", value: true } });
    case "park":
    case "park-tree":
      return create(ScopeSchema, {
        selector: { case: "park", value: p.value },
        includeAffiliates: p.kind === "park-tree",
      });
    case "province":
      return create(ScopeSchema, { selector: { case: "province", value: p.value } });
    case "city": {
      const [province, city] = p.value.split("/");
      if (!province || !city) {
        return "a city is written Province/City, for example Hebei/Baoding";
      }
      return create(ScopeSchema, {
        selector: { case: "city", value: create(LocationSchema, { province, city }) },
      });
    }
    case "sector":
      return create(ScopeSchema, { selector: { case: "sector", value: p.value } });
  }
}

/** How the scope reads in a heading. */
export function describe(p: Picked, parkNames: Map<string, string>): string {
  switch (p.kind) {
    case "all":
      return "Every park and company";
    case "park":
      return parkNames.get(p.value) ?? p.value;
    case "park-tree":
      return `${parkNames.get(p.value) ?? p.value} and its affiliated parks`;
    case "province":
    case "city":
      return p.value.replace("/", ", ");
    case "sector":
      return `Sector: ${p.value}`;
  }
}
