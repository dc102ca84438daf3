//! Every registry RPC and error path of the contract, over real gRPC.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use tonic::Code;
use zgc_proto::registry::v1::*;
use zgc_tests::fixtures::{reason, revision_header, violation_fields};
use zgc_tests::{Backend, company, date, loc, on_both_backends, park, request_id};

type Client = registry_service_client::RegistryServiceClient<tonic::transport::Channel>;

async fn create_park(c: &mut Client, id: &str, p: Park) -> Park {
    c.create_park(CreateParkRequest {
        park: Some(p),
        park_id: id.into(),
        request_id: String::new(),
    })
    .await
    .expect("create park")
    .into_inner()
}

async fn create_company(c: &mut Client, id: &str, co: Company) -> Company {
    c.create_company(CreateCompanyRequest {
        company: Some(co),
        company_id: id.into(),
        request_id: String::new(),
    })
    .await
    .expect("create company")
    .into_inner()
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|s| s.to_string()).collect(),
    })
}

async fn create_get_and_server_generated_ids(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    let p = create_park(
        &mut c,
        "baoding",
        park("Baoding Zhongguancun Innovation Center", "Hebei", "Baoding"),
    )
    .await;
    assert_eq!(p.name, "parks/baoding");
    assert!(!p.uid.is_empty() && p.create_time.is_some() && p.update_time.is_some());
    assert!(p.revision > 0);
    assert_eq!(p.etag, p.revision.to_string());

    let got = c
        .get_park(GetParkRequest {
            name: "parks/baoding".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, p);

    // No ID: the server picks a valid one.
    let generated = create_company(&mut c, "", company("Tianchen", "Hebei", "Qinhuangdao")).await;
    let id = generated.name.strip_prefix("companies/").unwrap();
    assert!(id.chars().next().unwrap().is_ascii_lowercase() && id.len() <= 63);

    // Writes carry their own revision in the header.
    let resp = c
        .create_company(CreateCompanyRequest {
            company: Some(company("X", "Hebei", "Baoding")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        revision_header(resp.metadata()),
        Some(resp.get_ref().revision)
    );
    // Reads carry the revision they reflect at least.
    let resp = c
        .get_park(GetParkRequest {
            name: "parks/baoding".into(),
        })
        .await
        .unwrap();
    assert!(revision_header(resp.metadata()).unwrap() >= p.revision);
    // Errors too.
    let err = c
        .get_park(GetParkRequest {
            name: "parks/nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(revision_header(err.metadata()).is_some());
}

async fn company_location_is_copied_from_its_park(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    create_park(
        &mut c,
        "luquan",
        park("Luquan Economic Development Zone", "Hebei", "Shijiazhuang"),
    )
    .await;
    let co = Company {
        display_name: "Chip maker".into(),
        park: "parks/luquan".into(),
        ..Default::default()
    };
    let created = create_company(&mut c, "chips", co).await;
    assert_eq!(created.location, loc("Hebei", "Shijiazhuang"));
}

async fn already_exists_not_found_and_missing_references(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    create_park(&mut c, "p", park("P", "Hebei", "Baoding")).await;
    let err = c
        .create_park(CreateParkRequest {
            park: Some(park("P2", "Hebei", "Baoding")),
            park_id: "p".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    let err = c
        .get_company(GetCompanyRequest {
            name: "companies/none".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let mut co = company("A", "Hebei", "Baoding");
    co.park = "parks/missing".into();
    let err = c
        .create_company(CreateCompanyRequest {
            company: Some(co),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err).as_deref(), Some("REFERENCE_NOT_FOUND"));

    let mut p = park("Child", "Hebei", "Baoding");
    p.parent_park = "parks/missing".into();
    let err = c
        .create_park(CreateParkRequest {
            park: Some(p),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

async fn invalid_fields_get_one_violation_each(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    let bad = Company {
        display_name: " ".into(),
        location: loc("Hebei", ""),
        sectors: vec!["Not A Slug".into()],
        founded: date(2023, 2, 30),
        employees: -3,
        ..Default::default()
    };
    let err = c
        .create_company(CreateCompanyRequest {
            company: Some(bad),
            company_id: "Bad_ID".into(),
            request_id: "not-a-uuid".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: BTreeSet<String> = violation_fields(&err).into_iter().collect();
    let expected: BTreeSet<String> = [
        "request_id",
        "company_id",
        "company.display_name",
        "company.location.city",
        "company.sectors[0]",
        "company.founded.day",
        "company.employees",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(fields, expected);

    let err = c
        .create_park(CreateParkRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violation_fields(&err), vec!["park"]);
    let err = c
        .get_company(GetCompanyRequest {
            name: "parks/x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violation_fields(&err), vec!["name"]);
}

async fn updates_follow_masks_and_etags(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    let mut co = company("Shenyue", "Beijing", "Beijing");
    co.employees = 1500;
    co.sectors = vec!["software".into()];
    let created = create_company(&mut c, "shenyue", co).await;

    // Mask names one field: only it changes.
    let patch = Company {
        name: created.name.clone(),
        display_name: "Hebei Shenyue Soft".into(),
        employees: 9,
        ..Default::default()
    };
    let updated = c
        .update_company(UpdateCompanyRequest {
            company: Some(patch),
            update_mask: mask(&["display_name"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.display_name, "Hebei Shenyue Soft");
    assert_eq!(updated.employees, 1500);
    assert!(updated.revision > created.revision);
    assert_eq!(updated.create_time, created.create_time);
    assert_eq!(updated.uid, created.uid);

    // No mask: the fields set in the message.
    let patch = Company {
        name: created.name.clone(),
        location: loc("Hebei", "Shijiazhuang"),
        ..Default::default()
    };
    let updated = c
        .update_company(UpdateCompanyRequest {
            company: Some(patch),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.location, loc("Hebei", "Shijiazhuang"));
    assert_eq!(updated.sectors, vec!["software".to_string()]);

    // A stale etag is ABORTED; the current one works.
    let stale = Company {
        name: created.name.clone(),
        etag: created.etag.clone(),
        employees: 1,
        ..Default::default()
    };
    let err = c
        .update_company(UpdateCompanyRequest {
            company: Some(stale),
            update_mask: mask(&["employees"]),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err).as_deref(), Some("ETAG_MISMATCH"));
    let fresh = Company {
        name: created.name.clone(),
        etag: updated.etag.clone(),
        employees: 1,
        ..Default::default()
    };
    let after = c
        .update_company(UpdateCompanyRequest {
            company: Some(fresh),
            update_mask: mask(&["employees"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.employees, 1);

    // Output-only or unknown fields in the mask are invalid.
    for path in ["etag", "create_time", "no_such_field"] {
        let p = Company {
            name: created.name.clone(),
            ..Default::default()
        };
        let err = c
            .update_company(UpdateCompanyRequest {
                company: Some(p),
                update_mask: mask(&[path]),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{path}");
        assert_eq!(violation_fields(&err), vec!["update_mask.paths[0]"]);
    }

    // `*` replaces everything: a bare message fails validation.
    let p = Company {
        name: created.name.clone(),
        ..Default::default()
    };
    let err = c
        .update_company(UpdateCompanyRequest {
            company: Some(p),
            update_mask: mask(&["*"]),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let p = Company {
        name: "companies/ghost".into(),
        employees: 3,
        ..Default::default()
    };
    let err = c
        .update_company(UpdateCompanyRequest {
            company: Some(p),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn parent_cycles_are_refused(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    create_park(&mut c, "zgc", park("Zhongguancun", "Beijing", "Beijing")).await;
    let mut child = park("Binhai", "Tianjin", "Tianjin");
    child.parent_park = "parks/zgc".into();
    create_park(&mut c, "binhai", child).await;
    let p = Park {
        name: "parks/zgc".into(),
        parent_park: "parks/binhai".into(),
        ..Default::default()
    };
    let err = c
        .update_park(UpdateParkRequest {
            park: Some(p),
            update_mask: mask(&["parent_park"]),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err).as_deref(), Some("PARENT_CYCLE"));

    create_company(&mut c, "hq", company("HQ", "Beijing", "Beijing")).await;
    let mut branch = company("Branch", "Hebei", "Baoding");
    branch.parent_company = "companies/hq".into();
    create_company(&mut c, "branch", branch).await;
    let p = Company {
        name: "companies/hq".into(),
        parent_company: "companies/branch".into(),
        ..Default::default()
    };
    let err = c
        .update_company(UpdateCompanyRequest {
            company: Some(p),
            update_mask: mask(&["parent_company"]),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err).as_deref(), Some("PARENT_CYCLE"));
    // Self reference is invalid outright.
    let p = Company {
        name: "companies/hq".into(),
        parent_company: "companies/hq".into(),
        ..Default::default()
    };
    let err = c
        .update_company(UpdateCompanyRequest {
            company: Some(p),
            update_mask: mask(&["parent_company"]),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

async fn deletes_check_references_and_etags(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    let zgc = create_park(&mut c, "zgc", park("Zhongguancun", "Beijing", "Beijing")).await;
    let mut child = park("Baoding", "Hebei", "Baoding");
    child.parent_park = "parks/zgc".into();
    create_park(&mut c, "baoding", child).await;
    let mut hq = company("HQ", "Beijing", "Beijing");
    hq.park = "parks/baoding".into();
    create_company(&mut c, "hq", hq).await;
    let mut branch = company("Branch", "Hebei", "Baoding");
    branch.parent_company = "companies/hq".into();
    let branch = create_company(&mut c, "branch", branch).await;

    for (name, by) in [
        ("parks/zgc", "parks/baoding"),
        ("parks/baoding", "companies/hq"),
    ] {
        let err = c
            .delete_park(DeleteParkRequest {
                name: name.into(),
                etag: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert_eq!(reason(&err).as_deref(), Some("RESOURCE_IN_USE"));
        assert!(err.message().contains(by), "{}", err.message());
    }
    let err = c
        .delete_company(DeleteCompanyRequest {
            name: "companies/hq".into(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err).as_deref(), Some("RESOURCE_IN_USE"));

    let err = c
        .delete_company(DeleteCompanyRequest {
            name: branch.name.clone(),
            etag: "12345".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let resp = c
        .delete_company(DeleteCompanyRequest {
            name: branch.name.clone(),
            etag: branch.etag.clone(),
        })
        .await
        .unwrap();
    assert!(revision_header(resp.metadata()).unwrap() > branch.revision);
    c.delete_company(DeleteCompanyRequest {
        name: "companies/hq".into(),
        etag: String::new(),
    })
    .await
    .unwrap();
    c.delete_park(DeleteParkRequest {
        name: "parks/baoding".into(),
        etag: String::new(),
    })
    .await
    .unwrap();
    c.delete_park(DeleteParkRequest {
        name: "parks/zgc".into(),
        etag: zgc.etag,
    })
    .await
    .unwrap();
    let err = c
        .delete_park(DeleteParkRequest {
            name: "parks/zgc".into(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn batch_create_is_atomic_and_may_reference_itself(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    let entry = |id: &str, parent: &str| {
        let mut co = company(id, "Tianjin", "Tianjin");
        co.parent_company = parent.into();
        CreateCompanyRequest {
            company: Some(co),
            company_id: id.into(),
            request_id: String::new(),
        }
    };
    // One bad entry: nothing is created.
    let mut bad = entry("c3", "");
    bad.company.as_mut().unwrap().display_name.clear();
    let err = c
        .batch_create_companies(BatchCreateCompaniesRequest {
            requests: vec![entry("c1", ""), entry("c2", ""), bad],
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violation_fields(&err),
        vec!["requests[2].company.display_name"]
    );
    let err = c
        .batch_create_companies(BatchCreateCompaniesRequest {
            requests: vec![entry("c1", ""), entry("c2", "companies/nope")],
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("requests[1].company.parent_company"),
        "{}",
        err.message()
    );
    let list = c
        .list_companies(ListCompaniesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.total_size, 0);

    // A later entry may name an earlier one as parent; one revision for all.
    let resp = c
        .batch_create_companies(BatchCreateCompaniesRequest {
            requests: vec![
                entry("c1", ""),
                entry("c2", "companies/c1"),
                entry("c3", "companies/c2"),
            ],
            request_id: String::new(),
        })
        .await
        .unwrap();
    let created = resp.into_inner().companies;
    assert_eq!(
        created.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["companies/c1", "companies/c2", "companies/c3"]
    );
    assert!(created.iter().all(|x| x.revision == created[0].revision));

    // Duplicate IDs inside a batch are refused too.
    let err = c
        .batch_create_companies(BatchCreateCompaniesRequest {
            requests: vec![entry("d1", ""), entry("d1", "")],
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    let err = c
        .batch_create_companies(BatchCreateCompaniesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let too_many = (0..1001).map(|i| entry(&format!("m{i}"), "")).collect();
    let err = c
        .batch_create_companies(BatchCreateCompaniesRequest {
            requests: too_many,
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

async fn batch_get_keeps_order_and_fails_on_a_missing_name(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    for id in ["a", "b", "c"] {
        create_company(&mut c, id, company(id, "Hebei", "Baoding")).await;
    }
    let names = vec![
        "companies/c".to_string(),
        "companies/a".into(),
        "companies/b".into(),
    ];
    let got = c
        .batch_get_companies(BatchGetCompaniesRequest {
            names: names.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        got.companies
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>(),
        names
    );
    let err = c
        .batch_get_companies(BatchGetCompaniesRequest {
            names: vec!["companies/a".into(), "companies/zz".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .batch_get_companies(BatchGetCompaniesRequest {
            names: vec!["companies/a".into(); 1001],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

async fn request_ids_make_creates_idempotent_across_restarts(backend: Backend) {
    let rid = request_id();
    let req = CreateCompanyRequest {
        company: Some(company("Once", "Hebei", "Baoding")),
        company_id: String::new(),
        request_id: rid.clone(),
    };
    let first = {
        let r = backend.start(|_| {}).await;
        let mut c = r.client().await;
        let first = c.create_company(req.clone()).await.unwrap().into_inner();
        let again = c.create_company(req.clone()).await.unwrap().into_inner();
        assert_eq!(first, again, "a retry returns the original result");
        r.stop().await;
        first
    };
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    let after_restart = c.create_company(req.clone()).await.unwrap().into_inner();
    assert_eq!(after_restart, first);
    let list = c
        .list_companies(ListCompaniesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.total_size, 1, "retries created nothing");

    let mut different = req.clone();
    different.company.as_mut().unwrap().display_name = "Twice".into();
    let err = c.create_company(different).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err).as_deref(), Some("REQUEST_ID_REUSED"));

    // Batches too.
    let batch = BatchCreateCompaniesRequest {
        requests: vec![CreateCompanyRequest {
            company: Some(company("B1", "Hebei", "Baoding")),
            ..Default::default()
        }],
        request_id: request_id(),
    };
    let one = c
        .batch_create_companies(batch.clone())
        .await
        .unwrap()
        .into_inner();
    let two = c.batch_create_companies(batch).await.unwrap().into_inner();
    assert_eq!(one, two);
    r.stop().await;
}

async fn list_filters_orders_and_counts(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    create_park(&mut c, "luquan", park("Luquan", "Hebei", "Shijiazhuang")).await;
    let specs = [
        (
            "a",
            "Hebei",
            10,
            vec!["electronic-information"],
            true,
            "article",
        ),
        ("b", "Hebei", 30, vec!["software"], false, ""),
        (
            "c",
            "Tianjin",
            20,
            vec!["electronic-information", "software"],
            true,
            "article",
        ),
        ("d", "Beijing", 40, vec![], false, ""),
    ];
    for (id, province, employees, sectors, high_tech, source) in specs {
        let mut co = company(&format!("Company {id}"), province, "X");
        co.employees = employees;
        co.sectors = sectors.into_iter().map(String::from).collect();
        co.high_tech = high_tech;
        if !source.is_empty() {
            co.labels.insert("source".into(), source.into());
        }
        if id == "a" || id == "b" {
            co.park = "parks/luquan".into();
        }
        create_company(&mut c, id, co).await;
    }
    let names = |resp: ListCompaniesResponse| {
        resp.companies
            .into_iter()
            .map(|c| c.name.replace("companies/", ""))
            .collect::<Vec<_>>()
    };
    let list = |filter: &str, order: &str| ListCompaniesRequest {
        filter: filter.into(),
        order_by: order.into(),
        ..Default::default()
    };

    let cases = [
        ("location.province = \"Hebei\"", "", vec!["a", "b"]),
        ("sectors:\"software\"", "", vec!["b", "c"]),
        ("labels.source:*", "", vec!["a", "c"]),
        (
            "labels.source = \"article\" AND employees > 15",
            "",
            vec!["c"],
        ),
        (
            "high_tech = true OR employees >= 40",
            "employees desc",
            vec!["d", "c", "a"],
        ),
        ("NOT location.province = \"Hebei\"", "", vec!["c", "d"]),
        ("park = \"parks/luquan\"", "employees desc", vec!["b", "a"]),
        ("park = \"parks/luquan\" AND employees < 20", "", vec!["a"]),
        ("", "employees", vec!["a", "c", "b", "d"]),
        (
            "(employees < 15 OR employees > 35) AND NOT high_tech = true",
            "",
            vec!["d"],
        ),
        // AIP-160 member restrictions: a boolean field alone.
        ("high_tech", "", vec!["a", "c"]),
        ("NOT high_tech", "", vec!["b", "d"]),
        ("high_tech AND employees > 15", "", vec!["c"]),
    ];
    for (filter, order, expected) in cases {
        let resp = c
            .list_companies(list(filter, order))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.total_size as usize, expected.len(), "{filter}");
        assert_eq!(names(resp), expected, "{filter} / {order}");
    }

    let err = c.list_companies(list("employees >", "")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err).as_deref(), Some("INVALID_FILTER"));
    assert!(err.message().contains("position 12"), "{}", err.message());
    let err = c
        .list_companies(list("colour = \"red\"", ""))
        .await
        .unwrap_err();
    assert!(
        err.message().contains("position 1") && err.message().contains("colour"),
        "{}",
        err.message()
    );
    let err = c.list_companies(list("", "colour")).await.unwrap_err();
    assert_eq!(violation_fields(&err), vec!["order_by"]);
    let err = c
        .list_companies(ListCompaniesRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violation_fields(&err), vec!["page_size"]);

    let parks = c
        .list_parks(ListParksRequest {
            filter: "kind = PARK_KIND_SCIENCE_PARK".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(parks.total_size, 1);
}

async fn page_tokens_are_bound_and_tamper_proof(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    for i in 0..5 {
        create_company(&mut c, &format!("c{i}"), company("C", "Hebei", "Baoding")).await;
    }
    let first = c
        .list_companies(ListCompaniesRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.companies.len(), 2);
    assert_eq!(first.total_size, 5);
    let token = first.next_page_token;
    assert!(!token.is_empty());

    // Another filter with the same token: refused.
    let err = c
        .list_companies(ListCompaniesRequest {
            page_size: 2,
            page_token: token.clone(),
            filter: "employees > 0".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err).as_deref(), Some("INVALID_PAGE_TOKEN"));
    // Any altered character: refused.
    let mut chars: Vec<char> = token.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let err = c
        .list_companies(ListCompaniesRequest {
            page_size: 2,
            page_token: tampered,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err).as_deref(), Some("INVALID_PAGE_TOKEN"));
    // Page size may change between pages.
    let rest = c
        .list_companies(ListCompaniesRequest {
            page_size: 10,
            page_token: token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.companies.len(), 3);
    assert!(rest.next_page_token.is_empty());
}

/// Pages through every order while other clients create and delete: no
/// item twice, and every item that existed throughout is seen.
async fn paging_while_others_write_never_duplicates_or_skips(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    let mut stable = BTreeSet::new();
    for i in 0..60 {
        let mut co = company(&format!("Stable {:02}", 59 - i), "Hebei", "Baoding");
        co.employees = i % 7;
        co.founded = date(2000 + i % 5, 0, 0);
        stable.insert(create_company(&mut c, &format!("s{i:02}"), co).await.name);
    }
    let writer = {
        let mut w = r.client().await;
        tokio::spawn(async move {
            for i in 0..60 {
                let mut co = company(&format!("Churn {i}"), "Tianjin", "Tianjin");
                co.employees = i % 5;
                let created = w
                    .create_company(CreateCompanyRequest {
                        company: Some(co),
                        company_id: format!("t{i:02}"),
                        request_id: String::new(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                if i % 2 == 0 {
                    w.delete_company(DeleteCompanyRequest {
                        name: created.name,
                        etag: String::new(),
                    })
                    .await
                    .unwrap();
                }
            }
        })
    };
    for order in [
        "",
        "employees",
        "employees desc, display_name",
        "founded desc",
        "display_name",
        "create_time",
    ] {
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = c
                .list_companies(ListCompaniesRequest {
                    page_size: 7,
                    page_token: token,
                    order_by: order.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            seen.extend(page.companies.into_iter().map(|c| c.name));
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        let unique: BTreeSet<_> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "duplicates with order {order:?}");
        assert!(
            stable.is_subset(&unique),
            "skipped items with order {order:?}"
        );
    }
    writer.await.unwrap();
}

/// Items whose sort fields change between pages, in both directions across
/// the cursor: every page shows the listing as of the first page, so each
/// item comes exactly once.
async fn paging_is_consistent_while_sort_fields_change(backend: Backend) {
    let r = backend.start(|_| {}).await;
    let mut c = r.client().await;
    for i in 0..40 {
        let mut co = company(&format!("C{i:02}"), "Hebei", "Baoding");
        co.employees = 10 + i;
        create_company(&mut c, &format!("c{i:02}"), co).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut page_no = 0;
    loop {
        let page = c
            .list_companies(ListCompaniesRequest {
                page_size: 5,
                page_token: token,
                order_by: "employees".into(),
                filter: "employees >= 10".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 40, "the total is the first page's");
        seen.extend(page.companies.iter().map(|x| x.name.clone()));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
        // Move an item already listed behind the cursor to the end, and one
        // not yet listed in front of it (and out of the filter).
        let move_to = |name: String, employees: i32| {
            let patch = Company {
                name,
                employees,
                ..Default::default()
            };
            let req = UpdateCompanyRequest {
                company: Some(patch),
                update_mask: mask(&["employees"]),
            };
            let mut c = c.clone();
            async move { c.update_company(req).await.unwrap() }
        };
        move_to(format!("companies/c{:02}", page_no), 1000).await;
        move_to(format!("companies/c{:02}", 39 - page_no), 0).await;
        page_no += 1;
    }
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), 40, "no item twice: {seen:?}");
    assert_eq!(unique.len(), 40, "no item skipped");
    // A fresh listing shows the new state.
    let now = c
        .list_companies(ListCompaniesRequest {
            filter: "employees >= 10".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.total_size, 40 - 7);
}

async fn a_page_token_older_than_the_history_expires_cleanly(backend: Backend) {
    let r = backend.start(|c| c.retention = 3).await;
    let mut c = r.client().await;
    for i in 0..4 {
        create_company(&mut c, &format!("c{i}"), company("C", "Hebei", "Baoding")).await;
    }
    let first = c
        .list_companies(ListCompaniesRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for i in 4..12 {
        create_company(&mut c, &format!("c{i}"), company("C", "Hebei", "Baoding")).await;
    }
    let err = c
        .list_companies(ListCompaniesRequest {
            page_size: 2,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err).as_deref(), Some("PAGE_TOKEN_EXPIRED"));
}

on_both_backends!(
    create_get_and_server_generated_ids,
    company_location_is_copied_from_its_park,
    already_exists_not_found_and_missing_references,
    invalid_fields_get_one_violation_each,
    updates_follow_masks_and_etags,
    parent_cycles_are_refused,
    deletes_check_references_and_etags,
    batch_create_is_atomic_and_may_reference_itself,
    batch_get_keeps_order_and_fails_on_a_missing_name,
    request_ids_make_creates_idempotent_across_restarts,
    list_filters_orders_and_counts,
    page_tokens_are_bound_and_tamper_proof,
    paging_while_others_write_never_duplicates_or_skips,
    paging_is_consistent_while_sort_fields_change,
    a_page_token_older_than_the_history_expires_cleanly,
);
