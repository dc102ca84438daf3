//! `zgc parks …` and `zgc companies …`.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use zgc_proto::json;
use zgc_proto::registry::v1::*;

use crate::args;
use crate::cli::{Create, Global, List, Output, Resource, Update};
use crate::connect;
use crate::error::CliError;

/// Which resource a command is about.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Parks,
    Companies,
}

fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(headers.to_vec());
    t
}

fn location(l: &Option<zgc_proto::types::v1::Location>) -> (String, String) {
    l.as_ref()
        .map(|l| (l.province.clone(), l.city.clone()))
        .unwrap_or_default()
}

fn park_rows(parks: &[Park]) -> Table {
    let mut t = table(&["name", "display name", "kind", "province", "city", "parent"]);
    for p in parks {
        let (province, city) = location(&p.location);
        let kind = ParkKind::try_from(p.kind)
            .map_or("", |k| k.as_str_name())
            .trim_start_matches("PARK_KIND_");
        t.add_row(vec![
            p.name.clone(),
            p.display_name.clone(),
            kind.to_lowercase(),
            province,
            city,
            p.parent_park.clone(),
        ]);
    }
    t
}

fn company_rows(companies: &[Company]) -> Table {
    let mut t = table(&[
        "name",
        "display name",
        "park",
        "province",
        "city",
        "employees",
        "sectors",
    ]);
    for c in companies {
        let (province, city) = location(&c.location);
        t.add_row(vec![
            c.name.clone(),
            c.display_name.clone(),
            c.park.clone(),
            province,
            city,
            c.employees.to_string(),
            c.sectors.join(", "),
        ]);
    }
    t
}

fn print_json<M: json::Named>(m: &M) -> Result<(), CliError> {
    let v = json::to_value(m).map_err(|e| CliError::Input(e.to_string()))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| CliError::Input(e.to_string()))?
    );
    Ok(())
}

/// Prints one entity.
pub fn print_entity(output: Output, e: &Entity) -> Result<(), CliError> {
    match (&e.kind, output) {
        (Some(entity::Kind::Park(p)), Output::Json) => print_json(p),
        (Some(entity::Kind::Company(c)), Output::Json) => print_json(c),
        (Some(entity::Kind::Park(p)), Output::Table) => {
            println!("{}", park_rows(std::slice::from_ref(p)));
            Ok(())
        }
        (Some(entity::Kind::Company(c)), Output::Table) => {
            println!("{}", company_rows(std::slice::from_ref(c)));
            Ok(())
        }
        (None, _) => Ok(()),
    }
}

fn parse<M: json::Named>(text: &str) -> Result<M, CliError> {
    json::from_str(&args::json_arg(text)?)
        .map_err(|e| CliError::Input(format!("invalid JSON: {e}")))
}

fn mask(m: &Option<String>) -> Option<prost_types::FieldMask> {
    m.as_ref().map(|m| prost_types::FieldMask {
        paths: m.split(',').map(|p| p.trim().to_string()).collect(),
    })
}

/// Runs a parks or companies subcommand.
pub async fn run(kind: Kind, command: Resource, g: &Global) -> Result<(), CliError> {
    let mut r = connect::registry(&g.registry, &g.connection).await?;
    let collection = match kind {
        Kind::Parks => "parks",
        Kind::Companies => "companies",
    };
    let wrap_park = |p: Park| Entity {
        kind: Some(entity::Kind::Park(p)),
    };
    let wrap_company = |c: Company| Entity {
        kind: Some(entity::Kind::Company(c)),
    };
    match (kind, command) {
        (Kind::Parks, Resource::Get { name }) => {
            let p = r
                .get_park(GetParkRequest {
                    name: args::name(collection, &name),
                })
                .await?
                .into_inner();
            print_entity(g.output, &wrap_park(p))
        }
        (Kind::Companies, Resource::Get { name }) => {
            let c = r
                .get_company(GetCompanyRequest {
                    name: args::name(collection, &name),
                })
                .await?
                .into_inner();
            print_entity(g.output, &wrap_company(c))
        }
        (Kind::Parks, Resource::List(l)) => {
            let (filter, order_by) = (
                l.filter.clone().unwrap_or_default(),
                l.order_by.clone().unwrap_or_default(),
            );
            list_pages(&l, g.output, async |page_token| {
                let req = ListParksRequest {
                    page_size: l.page_size,
                    page_token,
                    filter: filter.clone(),
                    order_by: order_by.clone(),
                };
                Ok(r.list_parks(req).await?.into_inner())
            })
            .await
        }
        (Kind::Companies, Resource::List(l)) => {
            let (filter, order_by) = (
                l.filter.clone().unwrap_or_default(),
                l.order_by.clone().unwrap_or_default(),
            );
            list_pages(&l, g.output, async |page_token| {
                let req = ListCompaniesRequest {
                    page_size: l.page_size,
                    page_token,
                    filter: filter.clone(),
                    order_by: order_by.clone(),
                };
                Ok(r.list_companies(req).await?.into_inner())
            })
            .await
        }
        (
            Kind::Parks,
            Resource::Create(Create {
                id,
                json,
                request_id,
            }),
        ) => {
            let park: Park = parse(&json)?;
            let p = r
                .create_park(CreateParkRequest {
                    park: Some(park),
                    park_id: id.unwrap_or_default(),
                    request_id: request_id.unwrap_or_default(),
                })
                .await?
                .into_inner();
            print_entity(g.output, &wrap_park(p))
        }
        (
            Kind::Companies,
            Resource::Create(Create {
                id,
                json,
                request_id,
            }),
        ) => {
            let company: Company = parse(&json)?;
            let c = r
                .create_company(CreateCompanyRequest {
                    company: Some(company),
                    company_id: id.unwrap_or_default(),
                    request_id: request_id.unwrap_or_default(),
                })
                .await?
                .into_inner();
            print_entity(g.output, &wrap_company(c))
        }
        (
            Kind::Parks,
            Resource::Update(Update {
                name,
                json,
                mask: m,
                etag,
            }),
        ) => {
            let mut park: Park = parse(&json)?;
            park.name = args::name(collection, &name);
            park.etag = etag.unwrap_or_default();
            let p = r
                .update_park(UpdateParkRequest {
                    park: Some(park),
                    update_mask: mask(&m),
                })
                .await?
                .into_inner();
            print_entity(g.output, &wrap_park(p))
        }
        (
            Kind::Companies,
            Resource::Update(Update {
                name,
                json,
                mask: m,
                etag,
            }),
        ) => {
            let mut company: Company = parse(&json)?;
            company.name = args::name(collection, &name);
            company.etag = etag.unwrap_or_default();
            let c = r
                .update_company(UpdateCompanyRequest {
                    company: Some(company),
                    update_mask: mask(&m),
                })
                .await?
                .into_inner();
            print_entity(g.output, &wrap_company(c))
        }
        (Kind::Parks, Resource::Delete { name, etag }) => {
            let name = args::name(collection, &name);
            r.delete_park(DeleteParkRequest {
                name: name.clone(),
                etag: etag.unwrap_or_default(),
            })
            .await?;
            eprintln!("deleted {name}");
            Ok(())
        }
        (Kind::Companies, Resource::Delete { name, etag }) => {
            let name = args::name(collection, &name);
            r.delete_company(DeleteCompanyRequest {
                name: name.clone(),
                etag: etag.unwrap_or_default(),
            })
            .await?;
            eprintln!("deleted {name}");
            Ok(())
        }
    }
}

/// A page of a `List*` response.
trait ListPage: json::Named {
    /// What is listed, for the count line.
    const NOUN: &'static str;
    /// The page as a table, and how many items it has.
    fn table(&self) -> (Table, usize);
    fn total(&self) -> i32;
    fn next(&self) -> &str;
}

impl ListPage for ListParksResponse {
    const NOUN: &'static str = "parks";
    fn table(&self) -> (Table, usize) {
        (park_rows(&self.parks), self.parks.len())
    }
    fn total(&self) -> i32 {
        self.total_size
    }
    fn next(&self) -> &str {
        &self.next_page_token
    }
}

impl ListPage for ListCompaniesResponse {
    const NOUN: &'static str = "companies";
    fn table(&self) -> (Table, usize) {
        (company_rows(&self.companies), self.companies.len())
    }
    fn total(&self) -> i32 {
        self.total_size
    }
    fn next(&self) -> &str {
        &self.next_page_token
    }
}

/// Prints pages fetched by `fetch(page_token)`: one, or all with `--all`.
async fn list_pages<R: ListPage>(
    l: &List,
    output: Output,
    mut fetch: impl AsyncFnMut(String) -> Result<R, CliError>,
) -> Result<(), CliError> {
    let mut token = l.page_token.clone().unwrap_or_default();
    loop {
        let page = fetch(token).await?;
        match output {
            Output::Json => print_json(&page)?,
            Output::Table => {
                let (table, n) = page.table();
                println!("{table}");
                eprintln!("{n} of {} {}", page.total(), R::NOUN);
            }
        }
        token = page.next().to_string();
        if token.is_empty() || !l.all {
            if !token.is_empty() && output == Output::Table {
                eprintln!("more: --page-token {token}");
            }
            return Ok(());
        }
    }
}
