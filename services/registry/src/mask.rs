//! Update masks (AIP-134): which fields an update replaces. Pure.

use zgc_proto::registry::v1::{Company, Park};

/// Fields of Park an update may name.
pub const PARK_FIELDS: &[&str] = &[
    "display_name",
    "kind",
    "location",
    "parent_park",
    "established",
    "sectors",
    "labels",
];

/// Fields of Company an update may name.
pub const COMPANY_FIELDS: &[&str] = &[
    "display_name",
    "park",
    "location",
    "sectors",
    "founded",
    "parent_company",
    "relocations",
    "employees",
    "investment_cny",
    "annual_figures",
    "high_tech",
    "listed",
    "labels",
];

/// Fields no update may name.
pub const OUTPUT_ONLY: &[&str] = &[
    "name",
    "uid",
    "create_time",
    "update_time",
    "revision",
    "etag",
];

/// Resolves a request's mask into the fields to replace. `None` mask: the
/// fields `is_set` says are set. `*`: every writable field. Errors name the
/// offending path.
pub fn resolve(
    mask: Option<&prost_types::FieldMask>,
    writable: &'static [&'static str],
    is_set: impl Fn(&str) -> bool,
) -> Result<Vec<&'static str>, (String, String)> {
    let Some(mask) = mask else {
        return Ok(writable.iter().copied().filter(|f| is_set(f)).collect());
    };
    if mask.paths.iter().any(|p| p == "*") {
        if mask.paths.len() > 1 {
            return Err(("update_mask".into(), "`*` must be the only path".into()));
        }
        return Ok(writable.to_vec());
    }
    let mut out = Vec::new();
    for (i, path) in mask.paths.iter().enumerate() {
        match writable.iter().find(|f| **f == path.as_str()) {
            Some(f) if !out.contains(f) => out.push(*f),
            Some(_) => {}
            None if OUTPUT_ONLY.contains(&path.as_str()) => {
                return Err((
                    format!("update_mask.paths[{i}]"),
                    format!("`{path}` is output only"),
                ));
            }
            None => {
                return Err((
                    format!("update_mask.paths[{i}]"),
                    format!(
                        "`{path}` is not an updatable field; use one of {}",
                        writable.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Whether a park field is set (non-default) in `p`.
pub fn park_is_set(p: &Park, field: &str) -> bool {
    match field {
        "display_name" => !p.display_name.is_empty(),
        "kind" => p.kind != 0,
        "location" => p.location.is_some(),
        "parent_park" => !p.parent_park.is_empty(),
        "established" => p.established.is_some(),
        "sectors" => !p.sectors.is_empty(),
        "labels" => !p.labels.is_empty(),
        _ => false,
    }
}

/// Copies the named fields from `patch` into `current`.
pub fn apply_park(current: &mut Park, patch: &Park, fields: &[&str]) {
    for f in fields {
        match *f {
            "display_name" => current.display_name.clone_from(&patch.display_name),
            "kind" => current.kind = patch.kind,
            "location" => current.location.clone_from(&patch.location),
            "parent_park" => current.parent_park.clone_from(&patch.parent_park),
            "established" => current.established = patch.established,
            "sectors" => current.sectors.clone_from(&patch.sectors),
            "labels" => current.labels.clone_from(&patch.labels),
            _ => {}
        }
    }
}

/// Whether a company field is set (non-default) in `c`.
pub fn company_is_set(c: &Company, field: &str) -> bool {
    match field {
        "display_name" => !c.display_name.is_empty(),
        "park" => !c.park.is_empty(),
        "location" => c.location.is_some(),
        "sectors" => !c.sectors.is_empty(),
        "founded" => c.founded.is_some(),
        "parent_company" => !c.parent_company.is_empty(),
        "relocations" => !c.relocations.is_empty(),
        "employees" => c.employees != 0,
        "investment_cny" => c.investment_cny != 0,
        "annual_figures" => !c.annual_figures.is_empty(),
        "high_tech" => c.high_tech,
        "listed" => c.listed,
        "labels" => !c.labels.is_empty(),
        _ => false,
    }
}

/// Copies the named fields from `patch` into `current`.
pub fn apply_company(current: &mut Company, patch: &Company, fields: &[&str]) {
    for f in fields {
        match *f {
            "display_name" => current.display_name.clone_from(&patch.display_name),
            "park" => current.park.clone_from(&patch.park),
            "location" => current.location.clone_from(&patch.location),
            "sectors" => current.sectors.clone_from(&patch.sectors),
            "founded" => current.founded = patch.founded,
            "parent_company" => current.parent_company.clone_from(&patch.parent_company),
            "relocations" => current.relocations.clone_from(&patch.relocations),
            "employees" => current.employees = patch.employees,
            "investment_cny" => current.investment_cny = patch.investment_cny,
            "annual_figures" => current.annual_figures.clone_from(&patch.annual_figures),
            "high_tech" => current.high_tech = patch.high_tech,
            "listed" => current.listed = patch.listed,
            "labels" => current.labels.clone_from(&patch.labels),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(paths: &[&str]) -> prost_types::FieldMask {
        prost_types::FieldMask {
            paths: paths.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn resolves_masks() {
        let c = Company {
            employees: 5,
            ..Default::default()
        };
        assert_eq!(
            resolve(None, COMPANY_FIELDS, |f| company_is_set(&c, f)).unwrap(),
            vec!["employees"]
        );
        assert_eq!(
            resolve(Some(&mask(&["*"])), COMPANY_FIELDS, |_| false)
                .unwrap()
                .len(),
            COMPANY_FIELDS.len()
        );
        assert_eq!(
            resolve(Some(&mask(&["listed", "listed"])), COMPANY_FIELDS, |_| {
                false
            })
            .unwrap(),
            vec!["listed"]
        );
        let (field, msg) =
            resolve(Some(&mask(&["listed", "etag"])), COMPANY_FIELDS, |_| false).unwrap_err();
        assert_eq!(field, "update_mask.paths[1]");
        assert!(msg.contains("output only"));
        assert!(resolve(Some(&mask(&["nope"])), COMPANY_FIELDS, |_| false).is_err());
        assert!(resolve(Some(&mask(&["*", "listed"])), COMPANY_FIELDS, |_| false).is_err());
    }

    #[test]
    fn every_writable_field_is_applied() {
        let patch = Company {
            display_name: "n".into(),
            park: "parks/p".into(),
            location: Some(Default::default()),
            sectors: vec!["s".into()],
            founded: Some(Default::default()),
            parent_company: "companies/p".into(),
            relocations: vec![Default::default()],
            employees: 1,
            investment_cny: 1,
            annual_figures: vec![Default::default()],
            high_tech: true,
            listed: true,
            labels: [("a".to_string(), "b".to_string())].into(),
            ..Default::default()
        };
        for f in COMPANY_FIELDS {
            assert!(company_is_set(&patch, f), "{f}");
        }
        let mut current = Company::default();
        apply_company(&mut current, &patch, COMPANY_FIELDS);
        assert_eq!(current, patch);
        let p = Park {
            display_name: "n".into(),
            kind: 1,
            location: Some(Default::default()),
            parent_park: "parks/q".into(),
            established: Some(Default::default()),
            sectors: vec!["s".into()],
            labels: [("a".to_string(), "b".to_string())].into(),
            ..Default::default()
        };
        for f in PARK_FIELDS {
            assert!(park_is_set(&p, f), "{f}");
        }
        let mut current = Park::default();
        apply_park(&mut current, &p, PARK_FIELDS);
        assert_eq!(current, p);
    }
}
