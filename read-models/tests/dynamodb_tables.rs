//! The read-model tables are declared three times: by
//! `DynamoDbReadModels::create_tables` (what the test suites run on), by
//! `template.yaml` (AWS) and by the LocalStack init hook (docker compose). These tests
//! check that the three agree on every table's keys, attribute types and indexes, so
//! that what the suites test is what gets deployed.
//!
//! The binary has no libtest harness (`harness = false`): every test is a
//! `libtest_mimic` trial, named as libtest would name it, so that the test on the
//! DynamoDB server is reported as skipped (ignored) by name when none answers and `CI`
//! is not set ([`ticketing_read_models::testing::dynamodb::dynamodb_trial`]). A new
//! test function is listed in `main`'s `trials!`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;
use ticketing_read_models::testing::dynamodb::{client, dynamodb_trial, test_url, with_dynamodb};
use ticketing_store::testing::{run_trials, sync_trial};

fn main() {
    run_trials(ticketing_store::trials![
        sync_trial => the_localstack_hook_creates_the_tables_the_template_declares;
        dynamodb_trial => the_store_creates_the_tables_the_template_declares;
    ])
}

/// One table as the three declarations describe it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// `(attribute, HASH | RANGE)`, in order.
    keys: Vec<(String, String)>,
    /// Attribute name to type (`S`, `N`).
    attributes: BTreeMap<String, String>,
    /// Index name to its keys and projection type.
    indexes: BTreeMap<String, (Vec<(String, String)>, String)>,
}

/// The tables by their name without the prefix (`read-sections`, ...).
type Tables = BTreeMap<String, Table>;

fn repository_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn text(value: &Value, what: &str) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
        .to_owned()
}

fn template_keys(value: &Value) -> Vec<(String, String)> {
    value
        .as_sequence()
        .expect("a KeySchema list")
        .iter()
        .map(|key| {
            (
                text(&key["AttributeName"], "AttributeName"),
                text(&key["KeyType"], "KeyType"),
            )
        })
        .collect()
}

fn from_template() -> Tables {
    let source = std::fs::read_to_string(repository_file("template.yaml")).unwrap();
    let template: Value = serde_yaml::from_str(&source).expect("template.yaml parses");
    let resources = template["Resources"].as_mapping().expect("Resources");
    let mut tables = Tables::new();
    for resource in resources.values() {
        if resource["Type"].as_str() != Some("AWS::DynamoDB::Table") {
            continue;
        }
        let properties = &resource["Properties"];
        // TableName: !Sub "${AWS::StackName}-read-sections"
        let Value::Tagged(name) = &properties["TableName"] else {
            panic!("TableName is not a !Sub: {:?}", properties["TableName"]);
        };
        let name = text(&name.value, "TableName");
        let suffix = name
            .strip_prefix("${AWS::StackName}-")
            .unwrap_or_else(|| panic!("{name} is not prefixed with the stack name"));
        let mut table = Table {
            keys: template_keys(&properties["KeySchema"]),
            ..Table::default()
        };
        for attribute in properties["AttributeDefinitions"].as_sequence().unwrap() {
            table.attributes.insert(
                text(&attribute["AttributeName"], "AttributeName"),
                text(&attribute["AttributeType"], "AttributeType"),
            );
        }
        if let Some(indexes) = properties["GlobalSecondaryIndexes"].as_sequence() {
            for index in indexes {
                table.indexes.insert(
                    text(&index["IndexName"], "IndexName"),
                    (
                        template_keys(&index["KeySchema"]),
                        text(&index["Projection"]["ProjectionType"], "ProjectionType"),
                    ),
                );
            }
        }
        tables.insert(suffix.to_owned(), table);
    }
    tables
}

/// `AttributeName=stream_id,KeyType=HASH`, the AWS CLI's shorthand, as its pairs.
fn shorthand(argument: &str) -> BTreeMap<String, String> {
    argument
        .split(',')
        .map(|pair| {
            let (key, value) = pair.split_once('=').expect("key=value");
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

fn json_keys(value: &serde_json::Value) -> Vec<(String, String)> {
    value
        .as_array()
        .expect("a KeySchema list")
        .iter()
        .map(|key| {
            (
                key["AttributeName"].as_str().unwrap().to_owned(),
                key["KeyType"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Runs the LocalStack hook with an `awslocal` that finds no table and records each
/// `create-table` it is asked for.
fn from_localstack_hook() -> Tables {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    std::fs::create_dir(&calls).unwrap();
    let shim = dir.path().join("awslocal");
    std::fs::write(
        &shim,
        "#!/bin/sh\n\
         [ \"$2\" = describe-table ] && exit 1\n\
         n=$(ls \"$CALLS\" | wc -l)\n\
         for argument in \"$@\"; do printf '%s\\n' \"$argument\"; done > \"$CALLS/$n\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = std::process::Command::new("bash")
        .arg(repository_file("localstack/init/ready.d/20-dynamodb.sh"))
        .env("PATH", path)
        .env("CALLS", &calls)
        .env("DYNAMODB_TABLE_PREFIX", "ticketing-")
        .status()
        .expect("bash runs the hook");
    assert!(status.success(), "the hook failed: {status}");

    let mut tables = Tables::new();
    for call in std::fs::read_dir(&calls).unwrap() {
        let call = std::fs::read_to_string(call.unwrap().path()).unwrap();
        let arguments: Vec<&str> = call.lines().collect();
        assert_eq!(
            &arguments[..2],
            ["dynamodb", "create-table"],
            "{arguments:?}"
        );
        // Each option and the values after it, up to the next option.
        let mut options: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut current = "";
        for argument in &arguments[2..] {
            if argument.starts_with("--") {
                current = argument;
                options.entry(current).or_default();
            } else {
                options.entry(current).or_default().push(argument);
            }
        }
        let name = options["--table-name"][0];
        let suffix = name.strip_prefix("ticketing-").unwrap();
        let mut table = Table {
            keys: options["--key-schema"]
                .iter()
                .map(|key| {
                    let key = shorthand(key);
                    (key["AttributeName"].clone(), key["KeyType"].clone())
                })
                .collect(),
            ..Table::default()
        };
        for attribute in &options["--attribute-definitions"] {
            let attribute = shorthand(attribute);
            table.attributes.insert(
                attribute["AttributeName"].clone(),
                attribute["AttributeType"].clone(),
            );
        }
        if let Some(indexes) = options.get("--global-secondary-indexes") {
            let indexes: serde_json::Value = serde_json::from_str(indexes[0]).unwrap();
            for index in indexes.as_array().unwrap() {
                table.indexes.insert(
                    index["IndexName"].as_str().unwrap().to_owned(),
                    (
                        json_keys(&index["KeySchema"]),
                        index["Projection"]["ProjectionType"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    ),
                );
            }
        }
        tables.insert(suffix.to_owned(), table);
    }
    tables
}

/// The tables `create_tables` made, as the DynamoDB API describes them.
async fn from_the_store(
    read_models: &ticketing_read_models::dynamodb::DynamoDbReadModels,
    client: &aws_sdk_dynamodb::Client,
) -> Tables {
    let names = read_models.tables();
    let prefix = names
        .sections
        .strip_suffix("read-sections")
        .expect("the sections table's name ends in read-sections");
    let mut tables = Tables::new();
    for name in names.all() {
        let described = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .unwrap();
        let described = described.table().unwrap();
        let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
            schema
                .iter()
                .map(|k| {
                    (
                        k.attribute_name().to_owned(),
                        k.key_type().as_str().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let mut table = Table {
            keys: keys(described.key_schema()),
            ..Table::default()
        };
        for attribute in described.attribute_definitions() {
            table.attributes.insert(
                attribute.attribute_name().to_owned(),
                attribute.attribute_type().as_str().to_owned(),
            );
        }
        for index in described.global_secondary_indexes() {
            table.indexes.insert(
                index.index_name().unwrap().to_owned(),
                (
                    keys(index.key_schema()),
                    index
                        .projection()
                        .and_then(|p| p.projection_type())
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                ),
            );
        }
        tables.insert(name.strip_prefix(prefix).unwrap().to_owned(), table);
    }
    tables
}

fn the_localstack_hook_creates_the_tables_the_template_declares() {
    let template = from_template();
    assert_eq!(template.len(), 8, "{:?}", template.keys());
    assert_eq!(from_localstack_hook(), template);
}

async fn the_store_creates_the_tables_the_template_declares() {
    with_dynamodb("the_store_creates_the_tables", |read_models| async move {
        let client = client(&test_url());
        assert_eq!(from_the_store(&read_models, &client).await, from_template());
    })
    .await;
}
