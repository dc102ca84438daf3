//! Turning command-line words into request fields.

use zgc_proto::stats::v1::{Scope, scope};
use zgc_proto::types::v1::{Date, Location};

use crate::cli::ScopeArgs;
use crate::error::CliError;

/// `x` or `parks/x` -> `parks/x`.
pub fn name(collection: &str, name_or_id: &str) -> String {
    if name_or_id.starts_with(&format!("{collection}/")) {
        name_or_id.to_string()
    } else {
        format!("{collection}/{name_or_id}")
    }
}

/// The scope the flags select.
pub fn scope(args: &ScopeArgs, affiliates: bool) -> Result<Scope, CliError> {
    let selector = if args.all {
        scope::Selector::All(true)
    } else if let Some(p) = &args.park {
        scope::Selector::Park(name("parks", p))
    } else if let Some(p) = &args.province {
        scope::Selector::Province(p.clone())
    } else if let Some(c) = &args.city {
        let (province, city) = c
            .split_once('/')
            .ok_or_else(|| CliError::Input(format!("--city takes Province/City, not {c:?}")))?;
        scope::Selector::City(Location {
            province: province.into(),
            city: city.into(),
            district: String::new(),
        })
    } else if let Some(s) = &args.sector {
        scope::Selector::Sector(s.clone())
    } else {
        return Err(CliError::Input(
            "choose a scope: --all, --park, --province, --city or --sector".into(),
        ));
    };
    Ok(Scope {
        selector: Some(selector),
        include_affiliates: affiliates,
    })
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
pub fn date(text: &str) -> Result<Date, CliError> {
    let bad = || {
        CliError::Input(format!(
            "dates are YYYY, YYYY-MM or YYYY-MM-DD, not {text:?}"
        ))
    };
    let mut parts = text.split('-').map(|p| p.parse::<i32>().map_err(|_| bad()));
    let year = parts.next().ok_or_else(bad)??;
    let month = parts.next().transpose()?.unwrap_or(0);
    let day = parts.next().transpose()?.unwrap_or(0);
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(Date { year, month, day })
}

/// An optional date flag.
pub fn opt_date(text: Option<&str>) -> Result<Option<Date>, CliError> {
    text.map(date).transpose()
}

/// A JSON argument, or standard input for `-`.
pub fn json_arg(text: &str) -> Result<String, CliError> {
    if text == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(CliError::from)
    } else {
        Ok(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_names() {
        assert_eq!(
            date("2016").unwrap(),
            Date {
                year: 2016,
                month: 0,
                day: 0
            }
        );
        assert_eq!(
            date("2016-07").unwrap(),
            Date {
                year: 2016,
                month: 7,
                day: 0
            }
        );
        assert_eq!(
            date("2016-07-09").unwrap(),
            Date {
                year: 2016,
                month: 7,
                day: 9
            }
        );
        assert!(date("July").is_err());
        assert!(date("2016-07-09-1").is_err());
        assert_eq!(name("parks", "baoding"), "parks/baoding");
        assert_eq!(name("parks", "parks/baoding"), "parks/baoding");
    }
}
