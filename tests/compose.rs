//! The docker compose setup for real Supabase: no Docker engine runs here, so these tests check
//! what can go wrong without one — the file parses, every service the harness needs is there
//! with a pinned image, and ports, env names and keys agree with each other and the harness.

use std::collections::{BTreeMap, BTreeSet};
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> Yaml {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn env_example() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join(".env.example")).unwrap();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

fn service<'a>(doc: &'a Yaml, name: &str) -> &'a Yaml {
    let svc = &doc["services"][name];
    assert!(
        !svc.is_badvalue(),
        "service {name} is missing from docker-compose.yml"
    );
    svc
}

#[test]
fn sync_path_services_are_present_with_pinned_images() {
    let doc = compose();
    for (name, image) in [
        ("db", "supabase/postgres:"),
        ("auth", "supabase/gotrue:v"),
        ("rest", "postgrest/postgrest:v"),
        ("realtime", "supabase/realtime:v"),
        ("kong", "kong:"),
    ] {
        let svc = service(&doc, name);
        let img = svc["image"].as_str().unwrap();
        assert!(img.starts_with(image), "{name}: {img}");
        assert!(
            !img.ends_with(":latest") && img.contains(':'),
            "{name} must pin a tag: {img}"
        );
        assert!(
            svc["profiles"].is_badvalue(),
            "{name} must start by default"
        );
    }
    for name in ["supavisor", "redis"] {
        assert!(
            service(&doc, name)["profiles"].as_vec().is_some(),
            "{name} must sit behind a profile"
        );
    }
    for unwanted in [
        "studio",
        "storage",
        "imgproxy",
        "analytics",
        "vector",
        "meta",
        "functions",
    ] {
        assert!(
            doc["services"][unwanted].is_badvalue(),
            "{unwanted} is not on the sync path"
        );
    }
}

#[test]
fn migrations_are_mounted_and_applied_after_supabase_schema() {
    let doc = compose();
    let volumes: Vec<&str> = service(&doc, "db")["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(
        volumes
            .iter()
            .any(|v| v.starts_with("./supabase/migrations:")),
        "{volumes:?}"
    );
    let script = volumes
        .iter()
        .find(|v| v.contains("zz-finos.sh"))
        .expect("init script mounted");
    // Must sort after the image's migrate.sh in /docker-entrypoint-initdb.d (top level).
    assert!(
        script.contains(":/docker-entrypoint-initdb.d/zz-finos.sh"),
        "{script}"
    );
    for v in &volumes {
        let host = v.split(':').next().unwrap();
        if host.starts_with("./") {
            assert!(
                root().join(host).exists(),
                "mounted path {host} does not exist"
            );
        }
    }
    let migrations = std::fs::read_dir(root().join("supabase/migrations")).unwrap();
    assert!(
        migrations
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "sql"))
    );
}

#[test]
fn realtime_limits_come_from_env_and_services_have_health_checks() {
    let doc = compose();
    let rt = service(&doc, "realtime");
    for var in [
        "TENANT_MAX_CONCURRENT_USERS",
        "TENANT_MAX_EVENTS_PER_SECOND",
        "TENANT_MAX_JOINS_PER_SECOND",
        "TENANT_MAX_CHANNELS_PER_CLIENT",
    ] {
        let value = rt["environment"][var].as_str().unwrap_or_default();
        assert!(
            value.contains(&format!("${{{var}")),
            "{var} must come from env, got {value:?}"
        );
    }
    // The tenant is the first label of the host name Kong uses.
    assert!(
        rt["container_name"]
            .as_str()
            .unwrap()
            .starts_with("realtime-dev.")
    );
    for name in ["db", "auth", "realtime", "kong"] {
        assert!(
            !service(&doc, name)["healthcheck"].is_badvalue(),
            "{name} needs a healthcheck"
        );
    }
}

#[test]
fn every_variable_without_default_is_in_env_example() {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let env = env_example();
    let mut missing = BTreeSet::new();
    for part in text.split("${").skip(1) {
        let expr = part.split('}').next().unwrap();
        if !expr.contains(":-") && !env.contains_key(expr) {
            missing.insert(expr.to_string());
        }
    }
    assert!(missing.is_empty(), ".env.example lacks {missing:?}");
}

#[test]
fn example_keys_are_signed_with_the_example_secret() {
    let env = env_example();
    let secret = &env["JWT_SECRET"];
    assert!(
        secret.len() >= 32,
        "Supabase wants a JWT secret of at least 32 characters"
    );
    for (var, role) in [("ANON_KEY", "anon"), ("SERVICE_ROLE_KEY", "service_role")] {
        let claims = syncstorm_wire::jwt::decode(secret, &env[var])
            .unwrap_or_else(|e| panic!("{var} does not verify with JWT_SECRET: {e}"));
        assert_eq!(claims.role, role);
    }
    assert_eq!(env["SUPABASE_ANON_KEY"], "${ANON_KEY}");
    assert_eq!(env["SUPABASE_SERVICE_ROLE_KEY"], "${SERVICE_ROLE_KEY}");
}

#[test]
fn published_ports_agree_with_the_urls_syncstorm_reads() {
    let env = env_example();
    let kong_port = &env["KONG_HTTP_PORT"];
    assert!(
        env["SUPABASE_URL"].ends_with(&format!(":{kong_port}")),
        "SUPABASE_URL must point at Kong"
    );
    assert!(env["DATABASE_URL"].contains(&format!(":{}/", env["POSTGRES_PORT"])));
    let doc = compose();
    for (svc, port) in [("kong", "KONG_HTTP_PORT"), ("db", "POSTGRES_PORT")] {
        let ports = service(&doc, svc)["ports"].as_vec().unwrap();
        let first = ports[0].as_str().unwrap();
        assert!(
            first.starts_with("127.0.0.1:"),
            "{svc} must publish on loopback only: {first}"
        );
        assert!(
            first.contains(port),
            "{svc} port must come from {port}: {first}"
        );
    }
}

#[test]
fn kong_routes_the_three_sync_paths_with_key_auth() {
    let text = std::fs::read_to_string(root().join("docker/kong/kong.yml")).unwrap();
    let doc = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let services = doc["services"].as_vec().unwrap();
    for path in ["/auth/v1/", "/rest/v1/", "/realtime/v1/"] {
        let svc = services
            .iter()
            .find(|s| {
                s["routes"][0]["paths"]
                    .as_vec()
                    .is_some_and(|p| p.iter().any(|x| x.as_str() == Some(path)))
            })
            .unwrap_or_else(|| panic!("no Kong route for {path}"));
        let plugins: Vec<&str> = svc["plugins"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            plugins.contains(&"key-auth"),
            "{path} must require an apikey"
        );
    }
}
