//! The README's route tables agree with the router: every path `router` serves (the OpenAPI
//! document's paths, which the router is built from) is written in the README (with `:name` for a `{name}` segment), so a route cannot be added or renamed unseen.

#[test]
fn the_readme_names_every_route() {
    let readme = include_str!("../../README.md");
    // `{lease_id}` and `:lease_id` alike become `*`.
    let normal = |path: &str| -> String {
        path.split('/')
            .map(|seg| match seg.starts_with('{') || seg.starts_with(':') {
                true => "*",
                false => seg,
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let written: std::collections::BTreeSet<String> = readme
        .split(|c: char| c.is_whitespace() || "`|(),[]?\"'".contains(c))
        .filter(|w| w.starts_with('/'))
        .map(normal)
        .collect();
    let doc = crate::openapi::document();
    let routes: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
    assert!(routes.len() > 50, "{routes:?}");
    for route in routes {
        assert!(written.contains(&normal(route)), "the README does not name {route}");
    }
}

/// Nothing reaches the router except through `routes!` (which takes the path and method from the
/// handler's `#[utoipa::path]`): a bare `.route(` would serve a path the spec does not describe.
#[test]
fn every_route_goes_through_the_spec() {
    let router = include_str!("lib.rs");
    let body = &router[router.find("pub fn api_routes").unwrap()..router.find("\n/// The admin routes").unwrap()];
    assert!(!body.contains(".route("), "a route registered outside routes!()");
    assert!(
        !body.contains(".nest(") && !body.contains(".merge("),
        "a router merged outside routes!()"
    );
    let doc = crate::openapi::document();
    let operations: usize = doc
        .paths
        .paths
        .values()
        .map(|item| {
            [
                &item.get,
                &item.put,
                &item.post,
                &item.delete,
                &item.options,
                &item.head,
                &item.patch,
            ]
            .iter()
            .filter(|op| op.is_some())
            .count()
        })
        .sum();
    let handlers: usize = body
        .split("routes!(")
        .skip(1)
        .map(|r| {
            r[..r.find(')').unwrap()]
                .split(',')
                .filter(|h| !h.trim().is_empty())
                .count()
        })
        .sum();
    // Each handler documents one method: a handler whose `#[utoipa::path]` named two would need
    // one operation id for both, which OpenAPI forbids.
    assert_eq!(operations, handlers, "operations in the spec vs handlers routed");
}
