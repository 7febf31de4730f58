//! The README's route tables agree with the router: every path `router` serves is written in the
//! README (with `:name` for a `{name}` segment), so a route cannot be added or renamed unseen.

#[test]
fn the_readme_names_every_route() {
    let router = include_str!("lib.rs");
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
    let routes: Vec<&str> = router
        .split(".route(")
        .skip(1)
        .filter_map(|r| r.trim_start().strip_prefix('"')?.split('"').next())
        .collect();
    assert!(routes.len() > 50, "{routes:?}");
    for route in routes {
        assert!(written.contains(&normal(route)), "the README does not name {route}");
    }
}
