//! Realtime mounted in the embedded stack: behind the `apikey` gate like behind Kong, with
//! `/metrics` open, and its slot dropped when the stack stops.

mod realtime_support;

use realtime_support::{Client, binding, connect};
use syncstorm_plans::SupabasePlan;
use syncstorm_stack::{Stack, StackConfig};
use syncstorm_wire::phoenix::Vsn;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_stack_serves_realtime_and_metrics() {
    let config = StackConfig::new(SupabasePlan::preset("free").unwrap());
    let stack = Stack::start_for_tests(config, CancellationToken::new())
        .await
        .unwrap();
    let ws = stack.url.replace("http://", "ws://");
    let url = format!(
        "{ws}/realtime/v1/websocket?apikey={}&vsn=1.0.0",
        stack.anon_key
    );
    let mut c: Client = connect(&url, Vsn::V1).await.unwrap();
    c.subscribe("realtime:s", vec![binding("*", "wallets", None)], None)
        .await;
    let not_a_key = format!("{ws}/realtime/v1/websocket?apikey=nope&vsn=1.0.0");
    assert_eq!(
        connect(&not_a_key, Vsn::V1).await.err(),
        Some(401),
        "Kong refuses unknown keys"
    );
    let metrics = reqwest::get(format!("{}/metrics", stack.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("syncstorm_realtime_connections 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("syncstorm_realtime_subscriptions_current 1\n"));
    let decoder = stack.realtime_decoder;
    let info = format!(
        "syncstorm_realtime_decoder_info{{decoder=\"{}\"}} 1\n",
        decoder.plugin()
    );
    assert!(metrics.contains(&info), "{metrics}");
    let db = realtime_support::db().await;
    let sql =
        "select count(*) from pg_replication_slots where plugin = $1 and active_pid is not null";
    let slots: i64 = db
        .query_one(sql, &[&decoder.plugin()])
        .await
        .unwrap()
        .get(0);
    assert!(slots >= 1);
    c.close().await;
    stack.stop().await.unwrap();
}
