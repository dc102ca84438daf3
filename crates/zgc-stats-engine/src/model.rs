//! What the engine keeps of each entity: just enough to subtract its
//! contribution later, with regions normalised.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use zgc_proto::registry::v1::{Company, Park};
use zgc_proto::types::v1::{Date, Location};

use crate::Ymd;
use crate::agg::BucketId;

/// A region key: normalised (trimmed, lower-case) province and city; the
/// city is empty at province level. The names are shared ([`Names`]
/// interns them): a region is kept per company and per branch footprint,
/// and there are only so many provinces and cities.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region {
    pub province: Arc<str>,
    pub city: Arc<str>,
}

impl Region {
    /// The province-level region of this one.
    pub fn province_level(&self) -> Self {
        Self {
            province: self.province.clone(),
            city: Arc::default(),
        }
    }

    /// This region as told apart at `level`.
    pub fn at(&self, level: Level) -> Self {
        match level {
            Level::Province => self.province_level(),
            Level::City => self.clone(),
        }
    }
}

/// How finely regions are told apart in an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Province,
    City,
}

/// Normalises a region name for comparison.
pub fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The first spelling seen of every province and city, and the shared
/// copy of every name kept per company (regions, parks, sectors: there
/// are only so many of them).
#[derive(Debug, Default, Clone)]
pub struct Names {
    provinces: HashMap<String, String>,
    cities: HashMap<(String, String), String>,
    shared: HashSet<Arc<str>>,
}

impl Names {
    /// Normalises a location, remembering spellings; `None` without a
    /// province.
    pub fn key(&mut self, l: Option<&Location>) -> Option<Region> {
        let l = l?;
        let province = norm(&l.province);
        if province.is_empty() {
            return None;
        }
        let city = norm(&l.city);
        self.provinces
            .entry(province.clone())
            .or_insert_with(|| l.province.trim().to_string());
        self.cities
            .entry((province.clone(), city.clone()))
            .or_insert_with(|| l.city.trim().to_string());
        Some(Region {
            province: self.intern(&province),
            city: self.intern(&city),
        })
    }

    /// The shared copy of `name`.
    pub fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.shared.get(name) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(name);
        self.shared.insert(shared.clone());
        shared
    }

    /// The shared copies of `names`, each once, in their first order.
    fn intern_all(&mut self, names: &[String]) -> Box<[Arc<str>]> {
        let mut out: Vec<Arc<str>> = Vec::with_capacity(names.len());
        for n in names {
            if !out.iter().any(|o| **o == **n) {
                out.push(self.intern(n));
            }
        }
        out.into_boxed_slice()
    }

    /// The reported location of a region key.
    pub fn location(&self, r: &Region) -> Location {
        Location {
            province: self.province(&r.province),
            city: if r.city.is_empty() {
                String::new()
            } else {
                self.cities
                    .get(&(r.province.to_string(), r.city.to_string()))
                    .cloned()
                    .unwrap_or_else(|| r.city.to_string())
            },
            district: String::new(),
        }
    }

    /// The reported spelling of a province key.
    pub fn province(&self, key: &str) -> String {
        self.provinces
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }
}

/// One relocation record.
#[derive(Debug, Clone, PartialEq)]
pub struct RelocationInfo {
    pub from: Region,
    pub to: Region,
    pub date: Option<Ymd>,
}

/// What the engine keeps of a park.
#[derive(Debug, Clone, PartialEq)]
pub struct ParkInfo {
    pub display_name: String,
    pub parent: String,
    pub location: Option<Region>,
    pub sectors: Box<[Arc<str>]>,
}

impl ParkInfo {
    pub fn from_proto(p: &Park, names: &mut Names) -> Self {
        Self {
            display_name: p.display_name.clone(),
            parent: p.parent_park.clone(),
            location: names.key(p.location.as_ref()),
            sectors: names.intern_all(&p.sectors),
        }
    }

    /// The buckets the park counts in.
    pub fn buckets(&self, name: &str) -> Vec<BucketId> {
        let mut ids = vec![BucketId::All, BucketId::Park(name.to_string())];
        push_region_and_sectors(&mut ids, self.location.as_ref(), &self.sectors);
        ids
    }
}

/// What the engine keeps of a company between its events: the buckets its
/// contribution went to, and what a branch's footprint in its parent's
/// buckets needs. The rest of its contribution (head counts, figures,
/// relocations) comes back with its next event, in `before`.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub park: Arc<str>,
    pub location: Option<Region>,
    pub sectors: Box<[Arc<str>]>,
    /// The parent company's name; empty for none.
    pub parent: Box<str>,
    pub founded: Option<Ymd>,
}

/// A company's whole contribution, read from one of its images.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyInfo {
    pub place: Placement,
    pub employees: i64,
    pub investment: i64,
    pub high_tech: bool,
    pub listed: bool,
    pub relocations: Vec<RelocationInfo>,
    /// (year, revenue, output value), years unique. Kept as the registry
    /// sends them (64-bit); sums widen to 128 bits.
    pub figures: Vec<(i32, i64, i64)>,
}

fn date(d: Option<&Date>) -> Option<Ymd> {
    Ymd::from_proto(d)
}

fn push_region_and_sectors(
    ids: &mut Vec<BucketId>,
    location: Option<&Region>,
    sectors: &[Arc<str>],
) {
    if let Some(r) = location {
        ids.push(BucketId::Province(r.province.to_string()));
        ids.push(BucketId::City(r.province.to_string(), r.city.to_string()));
    }
    ids.extend(sectors.iter().map(|s| BucketId::Sector(s.to_string())));
}

impl CompanyInfo {
    pub fn from_proto(c: &Company, names: &mut Names) -> Self {
        let mut figures: Vec<(i32, i64, i64)> = Vec::with_capacity(c.annual_figures.len());
        for f in &c.annual_figures {
            // Years are unique in the registry; keep the first if not.
            if !figures.iter().any(|(y, _, _)| *y == f.year) {
                figures.push((f.year, f.revenue_cny, f.output_value_cny));
            }
        }
        Self {
            place: Placement {
                park: names.intern(&c.park),
                location: names.key(c.location.as_ref()),
                sectors: names.intern_all(&c.sectors),
                parent: c.parent_company.as_str().into(),
                founded: date(c.founded.as_ref()),
            },
            employees: i64::from(c.employees),
            investment: c.investment_cny,
            high_tech: c.high_tech,
            listed: c.listed,
            relocations: c
                .relocations
                .iter()
                .filter_map(|r| {
                    Some(RelocationInfo {
                        from: names.key(r.from.as_ref())?,
                        to: names.key(r.to.as_ref())?,
                        date: date(r.date.as_ref()),
                    })
                })
                .collect(),
            figures,
        }
    }
}

impl Placement {
    /// The buckets the company counts in.
    pub fn buckets(&self) -> Vec<BucketId> {
        let mut ids = vec![BucketId::All];
        if !self.park.is_empty() {
            ids.push(BucketId::Park(self.park.to_string()));
        }
        push_region_and_sectors(&mut ids, self.location.as_ref(), &self.sectors);
        ids
    }
}
