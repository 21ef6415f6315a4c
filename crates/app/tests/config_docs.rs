//! The settings operators read about are the settings the code reads: README.md's
//! "Configuration" section, `.env.example` and `docs/configuration.md` each name exactly the
//! variables of `Config::settings()`, and the docs table shows each one's default and meaning
//! as declared in the code.

use std::collections::BTreeSet;
use std::path::PathBuf;

use till_app::config::Config;

/// In `.env.example`'s marked compose section: read by docker-compose, never by Till.
const COMPOSE_ONLY: &[&str] = &[
    "TILL_HTTP_PORT",
    "TILL_SUBNET",
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "TILL_IMAGE",
    "TILL_HTTPS_PORT",
    "POSTGRES_MAX_CONNECTIONS",
    "REDIS_MAXMEMORY",
    "REDIS_CACHE_MAXMEMORY",
    "BACKUP_TIME",
    "BACKUP_KEEP_DAYS",
    "PROMETHEUS_PORT",
    "GRAFANA_PORT",
    "GRAFANA_ADMIN_PASSWORD",
];
/// Read by the log subscriber's filter, not by `Config`.
const NOT_CONFIG: &[&str] = &["RUST_LOG"];

fn repo_file(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn settings() -> BTreeSet<String> {
    Config::settings().map(|s| s.name.to_owned()).collect()
}

fn is_var(s: &str) -> bool {
    s.len() > 2
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Every `` `NAME` `` in `text` that looks like an environment variable.
fn backticked_vars(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| is_var(s))
        .map(str::to_owned)
        .collect()
}

#[test]
fn readme_configuration_section_names_every_setting_and_no_other() {
    let readme = repo_file("README.md");
    let start = readme
        .find("## Configuration\n")
        .expect("README.md has a Configuration section");
    let section = &readme[start + 3..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    assert_eq!(backticked_vars(section), settings());
}

#[test]
fn env_example_names_every_setting_and_marks_compose_only_ones() {
    let text = repo_file(".env.example");
    let mut compose = BTreeSet::new();
    let mut till = BTreeSet::new();
    let mut in_compose = false;
    for line in text.lines() {
        if line.starts_with("# ---") {
            in_compose = line.contains("compose (not read by Till itself");
            continue;
        }
        let Some((name, _)) = line.trim_start_matches('#').trim().split_once('=') else {
            continue;
        };
        if !is_var(name) {
            continue;
        }
        if in_compose {
            compose.insert(name.to_owned());
        } else if !NOT_CONFIG.contains(&name) {
            till.insert(name.to_owned());
        }
    }
    let allowed: BTreeSet<String> = COMPOSE_ONLY.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        compose, allowed,
        "the compose section lists compose-only variables"
    );
    assert_eq!(till, settings());
}

#[test]
fn docs_table_matches_the_declared_settings() {
    let text = repo_file("docs/configuration.md");
    let rows: BTreeSet<String> = text
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(str::to_owned)
        .collect();
    let names: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r.split('`').nth(1))
        .map(str::to_owned)
        .collect();
    assert_eq!(names, settings());
    for s in Config::settings() {
        let default = if s.default == "-" {
            "-".to_owned()
        } else {
            format!("`{}`", s.default)
        };
        let row = format!("| `{}` | {default} | {} |", s.name, s.doc);
        assert!(
            rows.contains(&row),
            "docs/configuration.md lacks the row\n{row}"
        );
    }
}
