//! `zgc gen`: the scenario's parks and companies at any scale, streamed.
//!
//! The generator yields the scenario's parks, then `companies` synthetic
//! companies with the same vocabulary: the first thirtieth are Zhongguancun
//! headquarters, later ones are branches of them, members of the parks,
//! relocated companies and companies with annual figures, in proportions
//! like the scenario's. It holds nothing but counters, so a million
//! companies take no more memory than ten.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use zgc_proto::registry::v1::Entity;

use crate::articles;
use crate::build::{company, company_entity, date, figure, labels, loc, moved, park_entity};
use crate::regions::{HEBEI_CITIES, OTHER_CITIES, SECTORS};

/// Streams a generated dataset; see the module docs.
pub struct Generator {
    rng: ChaCha8Rng,
    parks: std::vec::IntoIter<Entity>,
    park_ids: Vec<String>,
    total: u64,
    next: u64,
    headquarters: u64,
    seed: String,
}

/// The ID of the `i`th generated company (from 0).
pub fn generated_id(i: u64) -> String {
    format!("gen-{i:08}")
}

/// The resource name of the `i`th generated company.
pub fn generated_name(i: u64) -> String {
    format!("companies/{}", generated_id(i))
}

/// The display name of the `i`th generated company.
pub fn generated_display_name(i: u64) -> String {
    format!("Generated Company {i:08}")
}

/// A dataset of the scenario's parks and `companies` synthetic companies.
pub fn generate(companies: u64, seed: u64) -> Generator {
    let parks = articles::parks();
    let park_ids = parks.iter().map(|p| p.name.clone()).collect();
    Generator {
        rng: ChaCha8Rng::seed_from_u64(seed),
        parks: parks
            .into_iter()
            .map(park_entity)
            .collect::<Vec<_>>()
            .into_iter(),
        park_ids,
        total: companies,
        next: 0,
        headquarters: (companies / 30).max(1),
        seed: seed.to_string(),
    }
}

impl Iterator for Generator {
    type Item = Entity;

    fn next(&mut self) -> Option<Entity> {
        if let Some(p) = self.parks.next() {
            return Some(p);
        }
        if self.next >= self.total {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let rng = &mut self.rng;
        let mut c = company(&generated_id(i), &generated_display_name(i));
        c.sectors = vec![SECTORS[rng.random_range(0..SECTORS.len())].to_string()];
        c.employees = rng.random_range(1..=2000);
        c.high_tech = rng.random_bool(0.4);
        c.founded = date(rng.random_range(1995..=2024), rng.random_range(0..=12), 0);
        if i < self.headquarters {
            c.park = "parks/zgc".into();
            c.location = loc("Beijing", "Beijing", "Haidian");
            c.listed = rng.random_bool(0.05);
        } else {
            let (province, city) = if rng.random_bool(0.7) {
                HEBEI_CITIES[rng.random_range(0..HEBEI_CITIES.len())]
            } else {
                OTHER_CITIES[rng.random_range(0..OTHER_CITIES.len())]
            };
            c.location = loc(province, city, "");
            if rng.random_bool(0.5) {
                c.parent_company = generated_name(rng.random_range(0..self.headquarters));
            }
            if rng.random_bool(0.3) {
                c.park = self.park_ids[rng.random_range(0..self.park_ids.len())].clone();
                // A park member sits where its park is.
                c.location = None;
            }
            if rng.random_bool(0.2) {
                let (fp, fc) = OTHER_CITIES[rng.random_range(0..2)];
                c.relocations = vec![moved(
                    loc(fp, fc, ""),
                    loc(province, city, ""),
                    date(rng.random_range(2014..=2024), rng.random_range(0..=12), 0),
                )];
            }
            if rng.random_bool(0.3) {
                let base = rng.random_range(1_000_000..=500_000_000);
                c.annual_figures = (2020..=2023)
                    .map(|y| figure(y, base + (y - 2020) as i64 * base / 10, base / 2))
                    .collect();
            }
            c.investment_cny = rng.random_range(0..=100_000_000);
        }
        c.labels = labels(&[("source", "synthetic"), ("seed", &self.seed)]);
        Some(company_entity(c))
    }
}
