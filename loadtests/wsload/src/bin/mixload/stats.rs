//! Per-request-type counters and latency histograms. Every worker keeps its own set (no locks on
//! the hot path); they are merged once, at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The request types reported. `Checkout` is the pair (order + payment) as the shopper sees
/// it; `CheckoutOrder` and `CheckoutPay` are its two HTTP requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Browse,
    Search,
    Product,
    Checkout,
    CheckoutOrder,
    CheckoutPay,
    Board,
    Order,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Browse,
        Kind::Search,
        Kind::Product,
        Kind::Checkout,
        Kind::CheckoutOrder,
        Kind::CheckoutPay,
        Kind::Board,
        Kind::Order,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Browse => "browse",
            Kind::Search => "search",
            Kind::Product => "product",
            Kind::Checkout => "checkout",
            Kind::CheckoutOrder => "checkout.order",
            Kind::CheckoutPay => "checkout.pay",
            Kind::Board => "board",
            Kind::Order => "order",
        }
    }

    /// One HTTP request each (the checkout pair is counted through its two parts).
    pub fn is_http(self) -> bool {
        self != Kind::Checkout
    }
}

/// Latencies are kept in microseconds, from 1 µs to 10 minutes, at 3 significant digits.
fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

#[derive(Clone)]
pub struct TypeStats {
    /// Every completed request, successful or not (a failed one's latency is its time to fail).
    pub hist: Histogram<u64>,
    pub requests: u64,
    pub errors: u64,
    /// "503 service_unavailable", "transport: timeout", … → count.
    pub error_kinds: BTreeMap<String, u64>,
    /// A few failures with their X-Request-Id, to find them in the server's log.
    pub samples: Vec<String>,
}

impl Default for TypeStats {
    fn default() -> Self {
        TypeStats {
            hist: new_hist(),
            requests: 0,
            errors: 0,
            error_kinds: BTreeMap::new(),
            samples: Vec::new(),
        }
    }
}

const MAX_SAMPLES: usize = 5;

impl TypeStats {
    pub fn record(&mut self, took: Duration, err: Option<&Failure>) {
        self.requests += 1;
        let _ = self.hist.record((took.as_micros() as u64).max(1));
        if let Some(f) = err {
            self.errors += 1;
            *self.error_kinds.entry(f.kind.clone()).or_default() += 1;
            if self.samples.len() < MAX_SAMPLES {
                self.samples.push(f.detail.clone());
            }
        }
    }

    pub fn merge(&mut self, o: &TypeStats) {
        self.requests += o.requests;
        self.errors += o.errors;
        let _ = self.hist.add(&o.hist);
        for (k, n) in &o.error_kinds {
            *self.error_kinds.entry(k.clone()).or_default() += n;
        }
        for s in &o.samples {
            if self.samples.len() < MAX_SAMPLES {
                self.samples.push(s.clone());
            }
        }
    }

    /// Percentile in milliseconds (NaN when nothing was recorded).
    pub fn pct_ms(&self, p: f64) -> f64 {
        if self.hist.is_empty() {
            f64::NAN
        } else {
            self.hist.value_at_quantile(p / 100.0) as f64 / 1000.0
        }
    }

    pub fn error_summary(&self) -> String {
        self.error_kinds
            .iter()
            .map(|(k, n)| format!("{n}× {k}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Why a request counts as an error: `kind` groups them ("409 insufficient_stock"), `detail`
/// is one example with the request id.
pub struct Failure {
    pub kind: String,
    pub detail: String,
}

/// One worker's stats for every type.
#[derive(Clone, Default)]
pub struct Set {
    pub by_kind: [TypeStats; 8],
}

impl Set {
    pub fn get(&mut self, k: Kind) -> &mut TypeStats {
        &mut self.by_kind[k as usize]
    }

    pub fn of(&self, k: Kind) -> &TypeStats {
        &self.by_kind[k as usize]
    }

    pub fn merge(&mut self, o: &Set) {
        for k in Kind::ALL {
            self.by_kind[k as usize].merge(&o.by_kind[k as usize]);
        }
    }

    /// Every HTTP request together (the checkout pair counts as its two requests).
    pub fn all_http(&self) -> TypeStats {
        let mut all = TypeStats::default();
        for k in Kind::ALL.into_iter().filter(|k| k.is_http()) {
            all.merge(self.of(k));
        }
        all
    }
}
