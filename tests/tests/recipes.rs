//! The deployment recipes in `docs/deploy` hold together: every TOML passes the binaries'
//! `check` (ConfigMaps' included), the Kubernetes manifests refer only to volumes, ConfigMaps,
//! claims, labels and variables that exist, the systemd units pass `systemd-analyze verify`,
//! and the Python files compile. Nothing here runs Kubernetes, a batch system or a gateway.
//!
//! YAML is read by Python's PyYAML (`scripts/test` installs it when it is missing) and
//! handed over as JSON, so that the checks themselves are Rust.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use afterglow_tests::binaries_dir;
use anyhow::{Context, Result, bail};
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/deploy")
}

/// Every file under `docs/deploy` whose name ends in `suffix`, sorted.
fn recipe_files(suffix: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, suffix: &str, found: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, suffix, found);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&deploy_dir(), suffix, &mut found);
    found.sort();
    found
}

fn relative(path: &Path) -> String {
    path.strip_prefix(deploy_dir())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn output_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// The variables a configuration names as `${NAME}` or `${NAME:-default}`: (name, has default).
fn env_references(text: &str) -> Vec<(String, bool)> {
    let mut references = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        references.push(match inner.split_once(":-") {
            Some((name, _)) => (name.to_owned(), true),
            None => (inner.to_owned(), false),
        });
        rest = &after[end + 1..];
    }
    references
}

/// Every YAML document of every manifest, as JSON: (file, document).
fn yaml_documents() -> Result<Vec<(String, Value)>> {
    let files = recipe_files(".yaml");
    let output = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\n\
             json.dump([[d for d in yaml.safe_load_all(open(p)) if d is not None] for p in sys.argv[1:]], sys.stdout)",
        ])
        .args(&files)
        .output()
        .context("python3 runs")?;
    if !output.status.success() {
        bail!(
            "reading the manifests with PyYAML failed (scripts/test installs python3-yaml):\n{}",
            output_text(&output)
        );
    }
    let parsed: Vec<Vec<Value>> = serde_json::from_slice(&output.stdout)?;
    Ok(files
        .iter()
        .zip(parsed)
        .flat_map(|(file, documents)| {
            let file = relative(file);
            documents
                .into_iter()
                .map(move |document| (file.clone(), document))
        })
        .collect())
}

/// A TOML configuration found in the recipes: a file, or a `.toml` key of a ConfigMap.
struct TomlRecipe {
    origin: String,
    name: String,
    text: String,
}

fn toml_recipes() -> Result<Vec<TomlRecipe>> {
    let mut recipes = Vec::new();
    for path in recipe_files(".toml") {
        recipes.push(TomlRecipe {
            origin: relative(&path),
            name: path.file_name().expect("a file").to_string_lossy().into(),
            text: std::fs::read_to_string(&path)?,
        });
    }
    for (file, document) in yaml_documents()? {
        if document["kind"] != "ConfigMap" {
            continue;
        }
        let Some(data) = document["data"].as_object() else {
            continue;
        };
        for (key, text) in data {
            if key.ends_with(".toml") {
                recipes.push(TomlRecipe {
                    origin: format!(
                        "{file}: ConfigMap {} key {key}",
                        document["metadata"]["name"]
                    ),
                    name: key.clone(),
                    text: text.as_str().context("ConfigMap data is text")?.to_owned(),
                });
            }
        }
    }
    Ok(recipes)
}

/// A value of the kind the deployment would give variable `name`.
fn placeholder(name: &str) -> String {
    if name.ends_with("COLLECTOR") {
        "http://collector.example:7701".to_owned()
    } else if name == "HOME" {
        "/home/recipe-test".to_owned()
    } else {
        format!("recipe-test-{}", name.to_lowercase().replace('_', "-"))
    }
}

#[test]
fn every_toml_recipe_passes_check() -> Result<()> {
    let recipes = toml_recipes()?;
    let from_config_maps = recipes
        .iter()
        .filter(|recipe| recipe.origin.contains("ConfigMap"))
        .count();
    assert!(
        recipes.len() >= 10 && from_config_maps >= 4,
        "expected the recipes' TOML files and ConfigMaps, found {}",
        recipes.len()
    );
    let dir = tempfile::tempdir()?;
    for (index, recipe) in recipes.iter().enumerate() {
        let binary = if recipe.name.contains("collector") {
            "afterglow-collector"
        } else {
            "afterglow-agent"
        };
        let path = dir.path().join(format!("{index}-{}", recipe.name));
        std::fs::write(&path, &recipe.text)?;
        // A clean environment: only the variables the file names without a default are set,
        // as the deployment around it would set them.
        let mut command = Command::new(binaries_dir().join(binary));
        command.env_clear().args(["check", "--config"]).arg(&path);
        for (name, has_default) in env_references(&recipe.text) {
            if !has_default {
                command.env(&name, placeholder(&name));
            }
        }
        let output = command.output()?;
        assert!(
            output.status.success(),
            "{binary} check rejects {}:\n{}",
            recipe.origin,
            output_text(&output)
        );
    }
    Ok(())
}

/// A pod's spec inside a manifest, with what its controller adds to it.
struct Pod {
    origin: String,
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
    /// Variables the controller puts in every container's environment.
    injected_env: &'static [&'static str],
    spec: Value,
}

/// What the Dask operator sets in every container of a worker pod.
const DASK_WORKER_ENV: &[&str] = &["DASK_WORKER_NAME", "DASK_SCHEDULER_ADDRESS"];

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn pods(documents: &[(String, Value)]) -> Vec<Pod> {
    let mut pods = Vec::new();
    for (file, document) in documents {
        let kind = document["kind"].as_str().unwrap_or_default();
        let name = document["metadata"]["name"].as_str().unwrap_or_default();
        let namespace = document["metadata"]["namespace"]
            .as_str()
            .map(str::to_owned);
        let origin = |part: &str| format!("{file}: {kind} {name}{part}");
        // The operator labels its pods with the cluster's name and the component.
        let dask_labels = |cluster: &str, component: &str, part: &Value| {
            let mut labels = string_map(&document["metadata"]["labels"]);
            labels.extend(string_map(&part["metadata"]["labels"]));
            labels.insert("dask.org/cluster-name".to_owned(), cluster.to_owned());
            labels.insert("dask.org/component".to_owned(), component.to_owned());
            labels
        };
        match kind {
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => pods.push(Pod {
                origin: origin(""),
                namespace: namespace.clone(),
                labels: string_map(&document["spec"]["template"]["metadata"]["labels"]),
                injected_env: &[],
                spec: document["spec"]["template"]["spec"].clone(),
            }),
            "DaskCluster" => {
                let scheduler = &document["spec"]["scheduler"];
                pods.push(Pod {
                    origin: origin(" scheduler"),
                    namespace: namespace.clone(),
                    labels: dask_labels(name, "scheduler", scheduler),
                    injected_env: &[],
                    spec: scheduler["spec"].clone(),
                });
                let worker = &document["spec"]["worker"];
                let mut labels = dask_labels(name, "worker", worker);
                labels.insert(
                    "dask.org/workergroup-name".to_owned(),
                    format!("{name}-default"),
                );
                pods.push(Pod {
                    origin: origin(" worker"),
                    namespace: namespace.clone(),
                    labels,
                    injected_env: DASK_WORKER_ENV,
                    spec: worker["spec"].clone(),
                });
            }
            "DaskWorkerGroup" => {
                let cluster = document["spec"]["cluster"].as_str().unwrap_or_default();
                let worker = &document["spec"]["worker"];
                let mut labels = dask_labels(cluster, "worker", worker);
                labels.insert("dask.org/workergroup-name".to_owned(), name.to_owned());
                pods.push(Pod {
                    origin: origin(" worker"),
                    namespace: namespace.clone(),
                    labels,
                    injected_env: DASK_WORKER_ENV,
                    spec: worker["spec"].clone(),
                });
            }
            _ => {}
        }
    }
    pods
}

fn items(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    items(value)
        .iter()
        .map(|item| item.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Whether a downward-API `fieldRef` path exists on a pod with these labels.
fn field_path_problem(path: &str, labels: &BTreeMap<String, String>) -> Option<String> {
    const FIELDS: [&str; 10] = [
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
        "metadata.labels",
    ];
    if FIELDS.contains(&path) {
        return None;
    }
    if let Some(key) = path
        .strip_prefix("metadata.labels['")
        .and_then(|rest| rest.strip_suffix("']"))
    {
        return (!labels.contains_key(key)).then(|| {
            format!(
                "fieldRef {path}: the pod has no label {key:?} (it has {:?})",
                labels.keys()
            )
        });
    }
    if path.starts_with("metadata.annotations['") {
        return None;
    }
    Some(format!("fieldRef {path:?} is not a downward-API field"))
}

/// `$(NAME)` references, which Kubernetes expands in commands, arguments and env values.
fn kubernetes_references(text: &str) -> Vec<String> {
    text.split("$(")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn kubernetes_manifests_refer_to_what_exists() -> Result<()> {
    let documents = yaml_documents()?;
    let mut config_maps: BTreeMap<(Option<String>, String), Value> = BTreeMap::new();
    let mut claims = BTreeSet::new();
    for (_, document) in &documents {
        let name = document["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let namespace = document["metadata"]["namespace"]
            .as_str()
            .map(str::to_owned);
        match document["kind"].as_str() {
            Some("ConfigMap") => {
                config_maps.insert((namespace, name), document["data"].clone());
            }
            Some("PersistentVolumeClaim") => {
                claims.insert((namespace, name));
            }
            _ => {}
        }
    }
    let pods = pods(&documents);
    assert!(
        pods.len() >= 6,
        "expected the recipes' pods, found {}",
        pods.len()
    );
    let mut problems = Vec::new();
    let mut agents = 0;
    for pod in &pods {
        let mut problem = |text: String| problems.push(format!("{}: {text}", pod.origin));
        let volumes: BTreeMap<&str, &Value> = items(&pod.spec["volumes"])
            .iter()
            .map(|volume| (volume["name"].as_str().unwrap_or_default(), volume))
            .collect();
        for (name, volume) in &volumes {
            if let Some(config_map) = volume["configMap"]["name"].as_str() {
                let key = (pod.namespace.clone(), config_map.to_owned());
                if !config_maps.contains_key(&key) {
                    problem(format!(
                        "volume {name}: no ConfigMap {config_map} in the pod's namespace ({}) in the recipes",
                        pod.namespace.as_deref().unwrap_or("the one applied to")
                    ));
                }
            }
            if let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str()
                && !claims.contains(&(pod.namespace.clone(), claim.to_owned()))
            {
                problem(format!("volume {name}: no PersistentVolumeClaim {claim}"));
            }
        }
        let containers: Vec<&Value> = items(&pod.spec["initContainers"])
            .iter()
            .chain(items(&pod.spec["containers"]))
            .collect();
        if containers.is_empty() {
            problem("no containers".to_owned());
        }
        for container in containers {
            let container_name = container["name"].as_str().unwrap_or_default();
            let mut problem = |text: String| problem(format!("container {container_name}: {text}"));
            let mut env_names: BTreeSet<String> = pod
                .injected_env
                .iter()
                .map(|name| (*name).to_owned())
                .collect();
            for variable in items(&container["env"]) {
                env_names.insert(variable["name"].as_str().unwrap_or_default().to_owned());
                if let Some(path) = variable["valueFrom"]["fieldRef"]["fieldPath"].as_str()
                    && let Some(text) = field_path_problem(path, &pod.labels)
                {
                    problem(text);
                }
            }
            let words: Vec<String> = strings(&container["command"])
                .into_iter()
                .chain(strings(&container["args"]))
                .collect();
            let env_values = items(&container["env"])
                .iter()
                .filter_map(|variable| variable["value"].as_str());
            for text in words.iter().map(String::as_str).chain(env_values) {
                for name in kubernetes_references(text) {
                    if !env_names.contains(&name) {
                        problem(format!("$({name}) names no variable of the container"));
                    }
                }
            }
            let mounts: Vec<(&str, &str)> = items(&container["volumeMounts"])
                .iter()
                .map(|mount| {
                    (
                        mount["name"].as_str().unwrap_or_default(),
                        mount["mountPath"].as_str().unwrap_or_default(),
                    )
                })
                .collect();
            for (volume, _) in &mounts {
                if !volumes.contains_key(volume) {
                    problem(format!(
                        "mounts volume {volume}, which the pod does not have"
                    ));
                }
            }
            let image = container["image"].as_str().unwrap_or_default();
            let is_agent = image.contains("afterglow-agent")
                || words.first().is_some_and(|word| word == "afterglow-agent");
            if !is_agent {
                continue;
            }
            agents += 1;
            let config = words
                .iter()
                .position(|word| word == "--config")
                .and_then(|at| words.get(at + 1));
            let Some(config) = config else {
                // Wrap mode without a file: the collector and cluster come from the environment.
                for needed in ["AFTERGLOW_COLLECTOR", "AFTERGLOW_CLUSTER"] {
                    if !env_names.contains(needed) {
                        problem(format!(
                            "the agent runs without --config and without {needed}"
                        ));
                    }
                }
                continue;
            };
            let config = Path::new(config);
            let (directory, file) = (
                config.parent().unwrap_or(Path::new("/")),
                config.file_name().unwrap_or_default().to_string_lossy(),
            );
            let Some((volume, _)) = mounts
                .iter()
                .find(|(_, mount_path)| Path::new(mount_path) == directory)
            else {
                problem(format!(
                    "--config {}: nothing is mounted at {}",
                    config.display(),
                    directory.display()
                ));
                continue;
            };
            let Some(config_map) = volumes
                .get(volume)
                .and_then(|volume| volume["configMap"]["name"].as_str())
            else {
                problem(format!(
                    "--config {}: volume {volume} is not a ConfigMap",
                    config.display()
                ));
                continue;
            };
            let Some(text) = config_maps
                .get(&(pod.namespace.clone(), config_map.to_owned()))
                .and_then(|data| data[file.as_ref()].as_str())
            else {
                problem(format!(
                    "--config {}: ConfigMap {config_map} has no key {file}",
                    config.display()
                ));
                continue;
            };
            for (name, has_default) in env_references(text) {
                if !has_default && !env_names.contains(&name) {
                    problem(format!(
                        "{config_map}/{file} uses ${{{name}}}, which the container does not set"
                    ));
                }
            }
        }
    }
    assert!(
        agents >= 5,
        "expected the recipes' agent containers, found {agents}"
    );
    problems.extend(services_problems(&documents, &pods));
    problems.extend(deployments_problems(&documents, &claims));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// Services select pods that exist and target ports those pods name; a DaskCluster's
/// scheduler Service selects its scheduler pod.
fn services_problems(documents: &[(String, Value)], pods: &[Pod]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut services = Vec::new();
    for (file, document) in documents {
        let name = document["metadata"]["name"].as_str().unwrap_or_default();
        match document["kind"].as_str() {
            Some("Service") => services.push((
                format!("{file}: Service {name}"),
                document["metadata"]["namespace"]
                    .as_str()
                    .map(str::to_owned),
                document["spec"].clone(),
            )),
            Some("DaskCluster") if document["spec"]["scheduler"]["service"].is_object() => {
                services.push((
                    format!("{file}: DaskCluster {name} scheduler service"),
                    document["metadata"]["namespace"]
                        .as_str()
                        .map(str::to_owned),
                    document["spec"]["scheduler"]["service"].clone(),
                ));
            }
            _ => {}
        }
    }
    for (origin, namespace, spec) in services {
        let selector = string_map(&spec["selector"]);
        let selected: Vec<&Pod> = pods
            .iter()
            .filter(|pod| {
                pod.namespace == namespace
                    && selector
                        .iter()
                        .all(|(key, value)| pod.labels.get(key) == Some(value))
            })
            .collect();
        if selector.is_empty() || selected.is_empty() {
            problems.push(format!("{origin}: selector {selector:?} selects no pod"));
            continue;
        }
        for port in items(&spec["ports"]) {
            let Some(target) = port["targetPort"].as_str() else {
                continue;
            };
            let named = selected.iter().all(|pod| {
                items(&pod.spec["containers"]).iter().any(|container| {
                    items(&container["ports"])
                        .iter()
                        .any(|container_port| container_port["name"] == target)
                })
            });
            if !named {
                problems.push(format!(
                    "{origin}: targetPort {target} is no container port's name"
                ));
            }
        }
    }
    problems
}

/// Deployments select their own pods, and one on a ReadWriteOnce claim never runs twice.
fn deployments_problems(
    documents: &[(String, Value)],
    claims: &BTreeSet<(Option<String>, String)>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, document) in documents {
        if document["kind"] != "Deployment" {
            continue;
        }
        let origin = format!("{file}: Deployment {}", document["metadata"]["name"]);
        let spec = &document["spec"];
        let labels = string_map(&spec["template"]["metadata"]["labels"]);
        for (key, value) in string_map(&spec["selector"]["matchLabels"]) {
            if labels.get(&key) != Some(&value) {
                problems.push(format!(
                    "{origin}: selector {key}={value} misses its own pods"
                ));
            }
        }
        let on_claim = items(&spec["template"]["spec"]["volumes"])
            .iter()
            .filter_map(|volume| volume["persistentVolumeClaim"]["claimName"].as_str())
            .any(|claim| claims.iter().any(|(_, name)| name == claim));
        if on_claim && (spec["replicas"] != 1 || spec["strategy"]["type"] != "Recreate") {
            problems.push(format!(
                "{origin}: a pod on a ReadWriteOnce claim needs replicas: 1 and strategy Recreate"
            ));
        }
    }
    problems
}

/// The executable of an `Exec…=` line, after systemd's prefixes (`-`, `@`, `+`, `!`, `:`).
fn exec_executable(line: &str) -> Option<&str> {
    let (key, value) = line.split_once('=')?;
    if !key.trim().starts_with("Exec") {
        return None;
    }
    value
        .trim_start_matches(['-', '@', '+', '!', ':'])
        .split_whitespace()
        .next()
}

#[test]
fn systemd_units_pass_verify() -> Result<()> {
    let units = recipe_files(".service");
    assert!(
        units.len() >= 4,
        "expected the recipes' units, found {units:?}"
    );
    let dir = tempfile::tempdir()?;
    let mut copies = Vec::new();
    for unit in &units {
        // `verify` fails on an ExecStart= binary that is not installed, and these units
        // name where they would be installed. The copies point at binaries that exist here:
        // the freshly built agent and collector, and /bin/true for Dask.
        let text = std::fs::read_to_string(unit)?;
        let mut copy = String::new();
        for line in text.lines() {
            let rewritten = match exec_executable(line) {
                Some(executable) if !Path::new(executable).exists() => {
                    let name = Path::new(executable).file_name().unwrap_or_default();
                    let built = binaries_dir().join(name);
                    let stand_in = if built.exists() {
                        built
                    } else {
                        PathBuf::from("/bin/true")
                    };
                    line.replacen(executable, &stand_in.display().to_string(), 1)
                }
                _ => line.to_owned(),
            };
            copy.push_str(&rewritten);
            copy.push('\n');
        }
        let path = dir.path().join(unit.file_name().expect("a file"));
        std::fs::write(&path, copy)?;
        copies.push(path);
    }
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&copies)
        .output()
        .context("systemd-analyze runs (Debian package systemd)")?;
    // Unknown keys and bad values are only warnings: any output at all is a failure.
    let text = output_text(&output);
    assert!(
        output.status.success() && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
    Ok(())
}

/// The top-level `key = "value"` of a TOML recipe.
fn toml_string(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == key).then(|| value.split('"').nth(1).unwrap_or_default().to_owned())
    })
}

/// A `paths` glob's match of `path`, with `*` as the only wildcard.
fn glob_matches(glob: &str, path: &str) -> bool {
    match glob.split_once('*') {
        None => glob == path,
        Some((prefix, rest)) => {
            let Some(path) = path.strip_prefix(prefix) else {
                return false;
            };
            (0..=path.len())
                .filter(|at| path.is_char_boundary(*at) && !path[..*at].contains('/'))
                .any(|at| glob_matches(rest, &path[at..]))
        }
    }
}

#[test]
fn vm_configs_write_where_their_units_allow_and_tail_what_dask_writes() -> Result<()> {
    let deploy = deploy_dir();
    let unit = |name: &str| std::fs::read_to_string(deploy.join("systemd").join(name));
    let directive = |text: &str, key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")).map(str::to_owned))
    };
    let config = |name: &str| std::fs::read_to_string(deploy.join("vm").join(name));
    let mut problems = Vec::new();
    // ProtectSystem=strict leaves only the StateDirectory= writable.
    for (unit_name, config_names, key) in [
        (
            "afterglow-agent.service",
            &["agent-worker.toml", "agent-scheduler.toml"][..],
            "state_dir",
        ),
        (
            "afterglow-collector.service",
            &["collector.toml"][..],
            "data_dir",
        ),
    ] {
        let text = unit(unit_name)?;
        for required in [
            "User=",
            "Restart=on-failure",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
        ] {
            if !text.lines().any(|line| line.starts_with(required)) {
                problems.push(format!("{unit_name}: no {required}"));
            }
        }
        let state = directive(&text, "StateDirectory").map(|dir| format!("/var/lib/{dir}"));
        for config_name in config_names {
            let configured = toml_string(&config(config_name)?, key);
            if configured.is_none() || configured != state {
                problems.push(format!(
                    "vm/{config_name}: {key} {configured:?} is not {unit_name}'s StateDirectory {state:?}"
                ));
            }
        }
    }
    for (unit_name, config_name) in [
        ("dask-worker@.service", "agent-worker.toml"),
        ("dask-scheduler.service", "agent-scheduler.toml"),
    ] {
        let written = directive(&unit(unit_name)?, "StandardError").and_then(|target| {
            target
                .strip_prefix("append:")
                .map(|path| path.replace("%i", "1"))
        });
        let globs: Vec<String> = config(config_name)?
            .lines()
            .filter_map(|line| line.strip_prefix("paths = "))
            .flat_map(|list| {
                list.split('"')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        let tailed = written
            .as_deref()
            .is_some_and(|path| globs.iter().any(|glob| glob_matches(glob, path)));
        if !tailed {
            problems.push(format!(
                "{unit_name} writes {written:?}, which vm/{config_name}'s paths {globs:?} miss"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[test]
fn python_recipes_compile() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut sources = recipe_files(".py");
    assert!(
        sources.len() >= 3,
        "expected the recipes' Python files, found {sources:?}"
    );
    // The dask-gateway Helm values carry Python too, in gateway.extraConfig.
    let mut snippets_found = 0;
    for (file, document) in yaml_documents()? {
        let Some(snippets) = document["gateway"]["extraConfig"].as_object() else {
            continue;
        };
        for (name, code) in snippets {
            let path = dir.path().join(format!("extraConfig-{name}.py"));
            std::fs::write(
                &path,
                code.as_str().with_context(|| format!("{file}: {name}"))?,
            )?;
            sources.push(path);
            snippets_found += 1;
        }
    }
    assert!(
        snippets_found >= 1,
        "expected gateway/values.yaml's extraConfig"
    );
    for source in &sources {
        // Compiled into the temporary directory: no __pycache__ in the repository.
        let output = Command::new("python3")
            .args([
                "-c",
                "import py_compile, sys\npy_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)",
            ])
            .arg(source)
            .arg(dir.path().join("compiled.pyc"))
            .output()?;
        assert!(
            output.status.success(),
            "{} does not compile:\n{}",
            relative(source),
            output_text(&output)
        );
    }
    Ok(())
}
