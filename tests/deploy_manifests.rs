//! The sharded-run deployments, checked without a cluster or a runner: the Kubernetes
//! manifests and the GitHub Actions workflow parse, and the fields a sharded run depends on
//! agree — one shard per index, every shard with the same run tag and start instant, the
//! scenario and keys where the pods read them, a merge step after all shards that cleans up
//! by the shared tag and fails on a missing shard or a breached threshold.

use std::path::PathBuf;

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .remove(0)
}

fn k8s(file: &str) -> Yaml {
    yaml(&format!("deploy/kubernetes/{file}"))
}

fn strings(list: &Yaml) -> Vec<String> {
    list.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The `KEY=VALUE` literals of the kustomization's run ConfigMap.
fn run_settings() -> std::collections::BTreeMap<String, String> {
    let kustomization = k8s("kustomization.yaml");
    let generators = kustomization["configMapGenerator"].as_vec().unwrap();
    let run = generators
        .iter()
        .find(|g| g["name"].as_str() == Some("syncstorm-run"))
        .expect("a syncstorm-run ConfigMap");
    strings(&run["literals"])
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A container's shell script (its `args`, one folded string).
fn script(container: &Yaml) -> String {
    strings(&container["args"]).join(" ")
}

#[test]
fn every_resource_the_kustomization_names_exists_and_parses() {
    let kustomization = k8s("kustomization.yaml");
    for file in strings(&kustomization["resources"]) {
        let doc = k8s(&file);
        assert!(doc["kind"].as_str().is_some(), "{file} has a kind");
    }
    assert!(
        !strings(&kustomization["resources"]).contains(&"secret.yaml".to_string()),
        "the keys' Secret is created by hand, never applied from the repository"
    );
    let scenario = root().join("deploy/kubernetes/scenario.toml");
    syncstorm_scenario::load_with(&scenario, &[], &[]).expect("the shipped scenario is valid");
}

#[test]
fn the_shards_are_an_indexed_job_with_one_tag_and_one_start() {
    let settings = run_settings();
    let shards: i64 = settings["SHARDS"].parse().unwrap();
    syncstorm::cleanup::validate_run_tag(&settings["RUN_TAG"]).expect("RUN_TAG is a run tag");
    chrono::DateTime::parse_from_rfc3339(&settings["START_AT"]).expect("START_AT is RFC 3339");

    let job = k8s("shards-job.yaml");
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(
        spec["completions"].as_i64(),
        Some(shards),
        "one pod per shard"
    );
    assert_eq!(
        spec["parallelism"].as_i64(),
        Some(shards),
        "all shards at once"
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"));
    let container = &pod["containers"][0];
    let run = script(container);
    for part in [
        "syncstorm run /scenario/scenario.toml",
        "--shard \"$JOB_COMPLETION_INDEX/$SHARDS\"",
        "--run-tag \"$RUN_TAG\"",
        "--start-at \"$START_AT\"",
        "--allow-host \"$ALLOW_HOST\"",
        "--out \"/results/shard-$JOB_COMPLETION_INDEX\"",
    ] {
        assert!(run.contains(part), "{part} missing from: {run}");
    }
    let env_from: Vec<&str> = container["envFrom"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|e| {
            e["secretRef"]["name"]
                .as_str()
                .or(e["configMapRef"]["name"].as_str())
        })
        .collect();
    assert_eq!(env_from, ["syncstorm-keys", "syncstorm-run"]);
    let volumes = pod["volumes"].as_vec().unwrap();
    let scenario = volumes
        .iter()
        .find(|v| v["name"].as_str() == Some("scenario"));
    assert_eq!(
        scenario.unwrap()["configMap"]["name"].as_str(),
        Some("syncstorm-scenario")
    );
    let results = volumes
        .iter()
        .find(|v| v["name"].as_str() == Some("results"));
    assert_eq!(
        results.unwrap()["persistentVolumeClaim"]["claimName"].as_str(),
        Some("syncstorm-results")
    );
    let pvc = k8s("results-pvc.yaml");
    assert_eq!(pvc["metadata"]["name"].as_str(), Some("syncstorm-results"));
    assert_eq!(strings(&pvc["spec"]["accessModes"]), ["ReadWriteMany"]);
}

#[test]
fn the_merge_job_waits_for_every_shard_then_merges_cleans_up_and_judges() {
    let job = k8s("merge-job.yaml");
    let pod = &job["spec"]["template"]["spec"];
    let wait = script(&pod["initContainers"][0]);
    assert!(
        wait.contains("/results/shard-*/*.json") && wait.contains("-lt \"$SHARDS\""),
        "{wait}"
    );
    let merge = script(&pod["containers"][0]);
    for part in [
        "syncstorm merge \"$@\" --out /results/merged/merged.json",
        "syncstorm cleanup --run-tag \"$RUN_TAG\"",
        "[ \"$found\" -eq \"$SHARDS\" ] || {",
        "exit 3",
    ] {
        assert!(merge.contains(part), "{part} missing from: {merge}");
    }
    assert!(
        merge.find("cleanup").unwrap() < merge.find("exit 3").unwrap(),
        "cleanup runs before the verdict"
    );
}

#[test]
fn the_workflow_runs_a_matrix_of_shards_and_one_merge() {
    let flow = yaml(".github/workflows/loadtest.yml");
    let jobs = &flow["jobs"];
    let shards = &flow["on"]["workflow_dispatch"]["inputs"]["shards"];
    assert!(shards["default"].as_str().is_some(), "a shards input");

    let shard = &jobs["shard"];
    assert_eq!(shard["needs"].as_str(), Some("plan"));
    assert_eq!(
        shard["strategy"]["matrix"]["index"].as_str(),
        Some("${{ fromJSON(needs.plan.outputs.indexes) }}")
    );
    assert_eq!(shard["strategy"]["fail-fast"].as_bool(), Some(false));
    let steps = shard["steps"].as_vec().unwrap();
    let run = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("--shard"))
        .expect("a step runs the shard");
    for part in [
        "--shard \"${{ matrix.index }}/${{ needs.plan.outputs.shards }}\"",
        "--run-tag \"${{ needs.plan.outputs.run_tag }}\"",
        "--start-at \"${{ needs.plan.outputs.start_at }}\"",
    ] {
        assert!(run.contains(part), "{part} missing from: {run}");
    }

    let merge = &jobs["merge"];
    assert_eq!(strings(&merge["needs"]), ["plan", "shard"]);
    let steps = merge["steps"].as_vec().unwrap();
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(runs.iter().any(|r| r.contains("syncstorm merge")));
    let cleanup = steps
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("cleanup --run-tag"))
        })
        .expect("a cleanup step");
    assert_eq!(cleanup["if"].as_str(), Some("always()"));
    assert!(
        cleanup["run"]
            .as_str()
            .unwrap()
            .contains("${{ needs.plan.outputs.run_tag }}")
    );
    let last = steps.last().unwrap()["run"].as_str().unwrap();
    assert!(
        last.contains("thresholds breached") && last.contains("exit 1"),
        "{last}"
    );
}
