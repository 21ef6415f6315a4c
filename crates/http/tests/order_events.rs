//! Order writes reach the live feed: creation, transitions, payments and refunds each send one
//! event to staff and to the order's own customer, and nothing to other customers.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, token: &str) -> Ws {
    let url = format!("ws://{}/api/v1/ws", app.addr);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
    let hello = next(&mut ws, Duration::from_secs(5))
        .await
        .expect("welcome");
    assert_eq!(hello["type"], "welcome");
    ws
}

/// Next text frame as JSON; `None` after `wait` without one.
async fn next(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) => return None,
        }
    }
}

async fn event(ws: &mut Ws) -> Value {
    next(ws, Duration::from_secs(5)).await.expect("an event")
}

#[tokio::test]
async fn every_order_write_is_announced_to_staff_and_its_customer() {
    let app = TestApp::spawn().await;
    let product = insert_product(&app, "EV-1", 1000, 0, 10).await;
    let staff = app.user("staff").await;
    let manager = app.user("manager").await;
    let customer = app.user("customer").await;
    let other = app.user("customer").await;
    let mut staff_ws = connect(&app, &staff.token).await;
    let mut mine_ws = connect(&app, &customer.token).await;
    let mut other_ws = connect(&app, &other.token).await;

    let order = create_order(
        &app,
        &customer.token,
        json!({"fulfilment": "pickup", "lines": [{"product_id": product, "quantity": 2}]}),
    )
    .await;
    let id = order["id"].as_str().unwrap();
    for ws in [&mut staff_ws, &mut mine_ws] {
        let e = event(ws).await;
        assert_eq!(e["type"], "order.created");
        assert!(e["seq"].as_i64().unwrap() > 0, "{e}");
        assert!(e["at"].is_string(), "{e}");
        assert_eq!(
            e["order"],
            json!({
                "id": id, "number": order["number"], "status": "pending", "channel": "online",
                "fulfilment": "pickup", "total_cents": 2000, "payment_status": "unpaid",
                "updated_at": order["updated_at"],
            })
        );
        assert!(
            e.get("customer_id").is_none(),
            "routing fields stay private: {e}"
        );
    }

    let r = app
        .post(
            &format!("/api/v1/orders/{id}/transitions"),
            Some(&staff.token),
            json!({"to": "confirmed"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    for ws in [&mut staff_ws, &mut mine_ws] {
        let e = event(ws).await;
        assert_eq!(e["type"], "order.updated");
        assert_eq!(e["order"]["status"], "confirmed");
    }

    let r = post_idem(
        &app,
        &format!("/api/v1/orders/{id}/payments"),
        &customer.token,
        &new_key(),
        json!({"method": "card", "amount_cents": 2000}),
    )
    .await;
    assert_eq!(r.status(), 201);
    for ws in [&mut staff_ws, &mut mine_ws] {
        let e = event(ws).await;
        assert_eq!(e["order"]["payment_status"], "paid");
    }

    let r = post_idem(
        &app,
        &format!("/api/v1/orders/{id}/refunds"),
        &manager.token,
        &new_key(),
        json!({"amount_cents": 500, "reason": "burnt"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    for ws in [&mut staff_ws, &mut mine_ws] {
        let e = event(ws).await;
        assert_eq!(e["order"]["payment_status"], "partially_refunded");
    }

    // A refused write announces nothing; other customers never hear of this order.
    let r = app
        .post(
            &format!("/api/v1/orders/{id}/transitions"),
            Some(&staff.token),
            json!({"to": "delivered"}),
        )
        .await;
    assert_eq!(r.status(), 409);
    assert!(next(&mut staff_ws, Duration::from_millis(600))
        .await
        .is_none());
    assert!(next(&mut other_ws, Duration::from_millis(100))
        .await
        .is_none());
}
