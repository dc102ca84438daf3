//! `zgc parks …` and `zgc companies …`: one function per subcommand,
//! written once for both collections through [`Collection`], which says
//! what differs between them (their messages and RPCs). [`render`] turns
//! them into tables (pure, tested).

pub mod render;

use tonic::Status;
use zgc_proto::json;
use zgc_proto::registry::v1::*;

use crate::args;
use crate::cli::{Create, Global, List, Output, Resource, Update};
use crate::connect::{self, Registry};
use crate::error::CliError;
use crate::output::{self, emit};

/// Which resource a command is about.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Parks,
    Companies,
}

/// Runs a parks or companies subcommand.
pub async fn run(kind: Kind, command: Resource, g: &Global) -> Result<(), CliError> {
    let mut registry = connect::registry(&g.registry, &g.connection).await?;
    match kind {
        Kind::Parks => run_on::<Parks>(&mut registry, command, g.output).await,
        Kind::Companies => run_on::<Companies>(&mut registry, command, g.output).await,
    }
}

async fn run_on<C: Collection>(
    r: &mut Registry,
    command: Resource,
    output: Output,
) -> Result<(), CliError> {
    match command {
        Resource::Get { name } => get::<C>(r, &name, output).await,
        Resource::List(l) => list::<C>(r, &l, output).await,
        Resource::Create(c) => create::<C>(r, c, output).await,
        Resource::Update(u) => update::<C>(r, u, output).await,
        Resource::Delete { name, etag } => delete::<C>(r, &name, etag).await,
    }
}

async fn get<C: Collection>(r: &mut Registry, name: &str, output: Output) -> Result<(), CliError> {
    let item = C::get(r, args::name(C::NAME, name)).await?;
    emit(output, &item, C::render_one)
}

async fn create<C: Collection>(
    r: &mut Registry,
    c: Create,
    output: Output,
) -> Result<(), CliError> {
    let item: C::Item = parse(&c.json)?;
    let created = C::create(
        r,
        item,
        c.id.unwrap_or_default(),
        c.request_id.unwrap_or_default(),
    )
    .await?;
    emit(output, &created, C::render_one)
}

async fn update<C: Collection>(
    r: &mut Registry,
    u: Update,
    output: Output,
) -> Result<(), CliError> {
    let mut item: C::Item = parse(&u.json)?;
    C::set_name_and_etag(
        &mut item,
        args::name(C::NAME, &u.name),
        u.etag.unwrap_or_default(),
    );
    let updated = C::update(r, item, mask(u.mask.as_deref())).await?;
    emit(output, &updated, C::render_one)
}

async fn delete<C: Collection>(
    r: &mut Registry,
    name: &str,
    etag: Option<String>,
) -> Result<(), CliError> {
    let name = args::name(C::NAME, name);
    C::delete(r, name.clone(), etag.unwrap_or_default()).await?;
    eprintln!("deleted {name}");
    Ok(())
}

/// Prints one page, or with `--all` every page from the first asked for.
async fn list<C: Collection>(r: &mut Registry, l: &List, output: Output) -> Result<(), CliError> {
    let mut token = l.page_token.clone().unwrap_or_default();
    loop {
        let query = Query {
            page_size: l.page_size,
            page_token: token,
            filter: l.filter.clone().unwrap_or_default(),
            order_by: l.order_by.clone().unwrap_or_default(),
        };
        let page = C::list(r, query).await?;
        let (items, total, next) = C::page(&page);
        match output {
            Output::Json => println!("{}", output::json(&page)?),
            Output::Table => {
                println!("{}", C::render(items));
                eprintln!("{}", render::count(items.len(), total, C::NAME));
            }
        }
        token = next.to_string();
        if token.is_empty() || !l.all {
            if !token.is_empty() && output == Output::Table {
                eprintln!("more: --page-token {token}");
            }
            return Ok(());
        }
    }
}

fn parse<M: json::Named>(text: &str) -> Result<M, CliError> {
    json::from_str(&args::json_arg(text)?)
        .map_err(|e| CliError::Input(format!("invalid JSON: {e}")))
}

/// `--mask a,b` as a field mask.
fn mask(m: Option<&str>) -> Option<prost_types::FieldMask> {
    m.map(|m| prost_types::FieldMask {
        paths: m.split(',').map(|p| p.trim().to_string()).collect(),
    })
}

/// One page's request, the same for both collections.
struct Query {
    page_size: i32,
    page_token: String,
    filter: String,
    order_by: String,
}

/// What differs between parks and companies.
trait Collection {
    /// The collection's name, as in resource names (`parks/x`).
    const NAME: &'static str;
    /// The resource's message.
    type Item: json::Named;
    /// A `List*` response.
    type Page: json::Named;

    async fn get(r: &mut Registry, name: String) -> Result<Self::Item, Status>;
    async fn list(r: &mut Registry, q: Query) -> Result<Self::Page, Status>;
    async fn create(
        r: &mut Registry,
        item: Self::Item,
        id: String,
        request_id: String,
    ) -> Result<Self::Item, Status>;
    async fn update(
        r: &mut Registry,
        item: Self::Item,
        mask: Option<prost_types::FieldMask>,
    ) -> Result<Self::Item, Status>;
    async fn delete(r: &mut Registry, name: String, etag: String) -> Result<(), Status>;

    fn set_name_and_etag(item: &mut Self::Item, name: String, etag: String);
    /// A page's items, its `total_size` and its `next_page_token`.
    fn page(page: &Self::Page) -> (&[Self::Item], i32, &str);
    fn render(items: &[Self::Item]) -> String;
    fn render_one(item: &Self::Item) -> String {
        Self::render(std::slice::from_ref(item)) + "\n"
    }
}

struct Parks;

impl Collection for Parks {
    const NAME: &'static str = "parks";
    type Item = Park;
    type Page = ListParksResponse;

    async fn get(r: &mut Registry, name: String) -> Result<Park, Status> {
        Ok(r.get_park(zgc_client::idempotent(GetParkRequest { name }))
            .await?
            .into_inner())
    }
    async fn list(r: &mut Registry, q: Query) -> Result<ListParksResponse, Status> {
        let request = ListParksRequest {
            page_size: q.page_size,
            page_token: q.page_token,
            filter: q.filter,
            order_by: q.order_by,
        };
        Ok(r.list_parks(zgc_client::idempotent(request))
            .await?
            .into_inner())
    }
    async fn create(
        r: &mut Registry,
        park: Park,
        park_id: String,
        request_id: String,
    ) -> Result<Park, Status> {
        // With a request ID the registry answers a resend once.
        let keyed = !request_id.is_empty();
        let request = CreateParkRequest {
            park: Some(park),
            park_id,
            request_id,
        };
        let request = zgc_client::retry::idempotent_if(request, keyed);
        Ok(r.create_park(request).await?.into_inner())
    }
    async fn update(
        r: &mut Registry,
        park: Park,
        update_mask: Option<prost_types::FieldMask>,
    ) -> Result<Park, Status> {
        let request = UpdateParkRequest {
            park: Some(park),
            update_mask,
        };
        Ok(r.update_park(request).await?.into_inner())
    }
    async fn delete(r: &mut Registry, name: String, etag: String) -> Result<(), Status> {
        r.delete_park(DeleteParkRequest { name, etag }).await?;
        Ok(())
    }
    fn set_name_and_etag(park: &mut Park, name: String, etag: String) {
        park.name = name;
        park.etag = etag;
    }
    fn page(page: &ListParksResponse) -> (&[Park], i32, &str) {
        (&page.parks, page.total_size, &page.next_page_token)
    }
    fn render(parks: &[Park]) -> String {
        render::parks(parks)
    }
}

struct Companies;

impl Collection for Companies {
    const NAME: &'static str = "companies";
    type Item = Company;
    type Page = ListCompaniesResponse;

    async fn get(r: &mut Registry, name: String) -> Result<Company, Status> {
        Ok(
            r.get_company(zgc_client::idempotent(GetCompanyRequest { name }))
                .await?
                .into_inner(),
        )
    }
    async fn list(r: &mut Registry, q: Query) -> Result<ListCompaniesResponse, Status> {
        let request = ListCompaniesRequest {
            page_size: q.page_size,
            page_token: q.page_token,
            filter: q.filter,
            order_by: q.order_by,
        };
        Ok(r.list_companies(zgc_client::idempotent(request))
            .await?
            .into_inner())
    }
    async fn create(
        r: &mut Registry,
        company: Company,
        company_id: String,
        request_id: String,
    ) -> Result<Company, Status> {
        // With a request ID the registry answers a resend once.
        let keyed = !request_id.is_empty();
        let request = CreateCompanyRequest {
            company: Some(company),
            company_id,
            request_id,
        };
        let request = zgc_client::retry::idempotent_if(request, keyed);
        Ok(r.create_company(request).await?.into_inner())
    }
    async fn update(
        r: &mut Registry,
        company: Company,
        update_mask: Option<prost_types::FieldMask>,
    ) -> Result<Company, Status> {
        let request = UpdateCompanyRequest {
            company: Some(company),
            update_mask,
        };
        Ok(r.update_company(request).await?.into_inner())
    }
    async fn delete(r: &mut Registry, name: String, etag: String) -> Result<(), Status> {
        r.delete_company(DeleteCompanyRequest { name, etag })
            .await?;
        Ok(())
    }
    fn set_name_and_etag(company: &mut Company, name: String, etag: String) {
        company.name = name;
        company.etag = etag;
    }
    fn page(page: &ListCompaniesResponse) -> (&[Company], i32, &str) {
        (&page.companies, page.total_size, &page.next_page_token)
    }
    fn render(companies: &[Company]) -> String {
        render::companies(companies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mask_is_split_and_trimmed() {
        assert_eq!(mask(None), None);
        assert_eq!(
            mask(Some("employees, location.city")).unwrap().paths,
            ["employees", "location.city"]
        );
    }
}
