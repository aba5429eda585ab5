//! The APIs as the pages see them: one typed call per endpoint, over HTTP,
//! carrying the browser's `Cookie` header so each API knows who is asking.
//! A call gives its value, or an [`ApiError`]: refused with a client error
//! and the API's `{"errors": [...]}` body (see [`Refusal`]), or unavailable
//! (unreachable, 5xx, unreadable answer), which pages show as an error page.

mod error;
mod types;

use std::future::Future;

use std::time::Duration;

use anyhow::Context as _;
use axum::http::header::{COOKIE, LINK};
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use uuid::Uuid;

pub(crate) use error::{ApiError, needs_sign_in};
pub(crate) use types::{
    BanState, Order, Payment, Refusal, SellerSummary, Ticket, TicketInput, TicketPage, User,
};

use crate::config::ApiUrls;
use crate::extract::Visitor;
use types::CurrentUserBody;

/// How often [`retry_not_found`] asks again.
const RETRY_EVERY: Duration = Duration::from_millis(150);

/// A value an API gave, with the headers that pages pass on (`Set-Cookie`)
/// or read (`Link`).
pub(crate) struct Reply<T> {
    pub(crate) value: T,
    pub(crate) headers: HeaderMap,
}

/// Whatever an API answered, refusals included, with its headers.
struct Answer<T> {
    outcome: Result<T, Refusal>,
    headers: HeaderMap,
}

/// Calls the APIs. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ApiClient {
    http: reqwest::Client,
    auth: String,
    tickets: String,
    orders: String,
    payments: String,
}

impl ApiClient {
    pub(crate) fn new(urls: &ApiUrls, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            // Redirects from an API are not part of any contract; a page
            // must see the API's own answer.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        let base = |url: &reqwest::Url| url.as_str().trim_end_matches('/').to_string();
        Ok(Self {
            http,
            auth: base(&urls.auth),
            tickets: base(&urls.tickets),
            orders: base(&urls.orders),
            payments: base(&urls.payments),
        })
    }

    /// The distinct API origins, each with the name of its readiness
    /// check: `apis` when one origin serves them all, else `auth-api`, ….
    pub(crate) fn origins(&self) -> Vec<(String, String)> {
        let mut origins: Vec<(String, String)> = Vec::new();
        for (name, url) in [
            ("auth", &self.auth),
            ("tickets", &self.tickets),
            ("orders", &self.orders),
            ("payments", &self.payments),
        ] {
            if !origins.iter().any(|(_, seen)| seen == url) {
                origins.push((format!("{name}-api"), url.clone()));
            }
        }
        if let [(name, _)] = origins.as_mut_slice() {
            *name = "apis".into();
        }
        origins
    }

    /// `GET {origin}/healthz` answers 2xx.
    pub(crate) async fn alive(&self, origin: &str) -> Result<(), String> {
        let response = self
            .http
            .get(format!("{origin}/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("{origin}/healthz answered {}", response.status()))
        }
    }

    /// The signed-in user, or `None`.
    pub(crate) async fn current_user(&self, visitor: &Visitor) -> Result<Option<User>, ApiError> {
        let path = "/api/users/currentuser";
        let answer = self
            .send::<CurrentUserBody, ()>(visitor, Method::GET, &self.auth, path, None)
            .await?;
        // The endpoint never refuses; if it did, the visitor is anonymous.
        Ok(answer.outcome.ok().and_then(|body| body.current_user))
    }

    /// Creates an account and signs in; the `Set-Cookie` of the session
    /// comes with the user.
    pub(crate) async fn sign_up(
        &self,
        visitor: &Visitor,
        email: &str,
        password: &str,
    ) -> Result<Reply<User>, ApiError> {
        self.credentials(visitor, "/api/users/signup", email, password)
            .await
    }

    /// Signs in; the `Set-Cookie` of the session comes with the user.
    pub(crate) async fn sign_in(
        &self,
        visitor: &Visitor,
        email: &str,
        password: &str,
    ) -> Result<Reply<User>, ApiError> {
        self.credentials(visitor, "/api/users/signin", email, password)
            .await
    }

    async fn credentials(
        &self,
        visitor: &Visitor,
        path: &str,
        email: &str,
        password: &str,
    ) -> Result<Reply<User>, ApiError> {
        let body = json!({"email": email, "password": password});
        self.send(visitor, Method::POST, &self.auth, path, Some(&body))
            .await?
            .reply()
    }

    /// Signs out; the headers of the answer (which clear the session
    /// cookie), whatever the API answered.
    pub(crate) async fn sign_out(&self, visitor: &Visitor) -> Result<HeaderMap, ApiError> {
        let answer: Answer<()> = self
            .send(
                visitor,
                Method::POST,
                &self.auth,
                "/api/users/signout",
                None::<&()>,
            )
            .await?;
        Ok(answer.headers)
    }

    /// One page of the tickets for sale matching `search` (the API's own
    /// query parameters, already encoded; see [`TicketPage`]).
    pub(crate) async fn tickets(
        &self,
        visitor: &Visitor,
        limit: u32,
        search: &str,
    ) -> Result<TicketPage, ApiError> {
        let mut path = format!("/api/tickets?limit={limit}");
        if !search.is_empty() {
            path.push('&');
            path.push_str(search);
        }
        let reply: Reply<Vec<Ticket>> = self
            .send(visitor, Method::GET, &self.tickets, &path, None::<&()>)
            .await?
            .reply()?;
        let next = reply
            .headers
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(types::next_query);
        Ok(TicketPage {
            tickets: reply.value,
            next,
        })
    }

    /// The signed-in seller's own tickets (every state), newest first, after
    /// the page `search` names.
    pub(crate) async fn my_tickets(
        &self,
        visitor: &Visitor,
        limit: u32,
        search: &str,
    ) -> Result<TicketPage, ApiError> {
        let mut query = String::from("seller=me");
        if !search.is_empty() {
            query.push('&');
            query.push_str(search);
        }
        self.tickets(visitor, limit, &query).await
    }

    /// The signed-in seller's totals.
    pub(crate) async fn seller_summary(
        &self,
        visitor: &Visitor,
    ) -> Result<SellerSummary, ApiError> {
        self.get(visitor, &self.tickets, "/api/tickets/summary")
            .await
    }

    pub(crate) async fn ticket(&self, visitor: &Visitor, id: Uuid) -> Result<Ticket, ApiError> {
        let path = format!("/api/tickets/{id}");
        self.get(visitor, &self.tickets, &path).await
    }

    /// Lists a ticket. `price` is the text the seller typed: sent as a JSON
    /// number when it is one, so that the API judges it and its message is
    /// the one shown next to the field.
    pub(crate) async fn create_ticket(
        &self,
        visitor: &Visitor,
        input: &TicketInput,
    ) -> Result<Ticket, ApiError> {
        let body = input.body();
        self.send(
            visitor,
            Method::POST,
            &self.tickets,
            "/api/tickets",
            Some(&body),
        )
        .await?
        .value()
    }

    pub(crate) async fn update_ticket(
        &self,
        visitor: &Visitor,
        id: Uuid,
        input: &TicketInput,
    ) -> Result<Ticket, ApiError> {
        let body = input.body();
        let path = format!("/api/tickets/{id}");
        self.send(visitor, Method::PUT, &self.tickets, &path, Some(&body))
            .await?
            .value()
    }

    pub(crate) async fn create_order(
        &self,
        visitor: &Visitor,
        ticket_id: Uuid,
    ) -> Result<Order, ApiError> {
        let body = json!({"ticketId": ticket_id});
        self.send(
            visitor,
            Method::POST,
            &self.orders,
            "/api/orders",
            Some(&body),
        )
        .await?
        .value()
    }

    /// Bans (`ban`) or unbans the user `id` with `reason`, as the signed-in
    /// admin; the user's ban state.
    pub(crate) async fn set_ban(
        &self,
        visitor: &Visitor,
        id: Uuid,
        reason: &str,
        ban: bool,
    ) -> Result<BanState, ApiError> {
        let path = format!("/api/users/{id}/{}", if ban { "ban" } else { "unban" });
        let body = json!({"reason": reason});
        self.send(visitor, Method::POST, &self.auth, &path, Some(&body))
            .await?
            .value()
    }

    pub(crate) async fn orders(&self, visitor: &Visitor) -> Result<Vec<Order>, ApiError> {
        self.get(visitor, &self.orders, "/api/orders").await
    }

    pub(crate) async fn order(&self, visitor: &Visitor, id: Uuid) -> Result<Order, ApiError> {
        let path = format!("/api/orders/{id}");
        self.get(visitor, &self.orders, &path).await
    }

    pub(crate) async fn cancel_order(&self, visitor: &Visitor, id: Uuid) -> Result<(), ApiError> {
        let path = format!("/api/orders/{id}");
        self.send(visitor, Method::DELETE, &self.orders, &path, None::<&()>)
            .await?
            .value()
    }

    /// Charges the order with a card token (Stripe's, or a test token).
    pub(crate) async fn pay(
        &self,
        visitor: &Visitor,
        order_id: Uuid,
        token: &str,
    ) -> Result<Payment, ApiError> {
        let body = json!({"token": token, "orderId": order_id});
        self.send(
            visitor,
            Method::POST,
            &self.payments,
            "/api/payments",
            Some(&body),
        )
        .await?
        .value()
    }

    /// `GET`s one resource; see [`ApiClient::send`].
    async fn get<T: DeserializeOwned>(
        &self,
        visitor: &Visitor,
        origin: &str,
        path: &str,
    ) -> Result<T, ApiError> {
        self.send(visitor, Method::GET, origin, path, None::<&()>)
            .await?
            .value()
    }

    /// Sends one request. 2xx is parsed as `T` (an empty body as JSON
    /// `null`, which `()` accepts); 4xx as the API's error body; anything
    /// else is the API failing, which no page can work around.
    async fn send<T, B>(
        &self,
        visitor: &Visitor,
        method: Method,
        origin: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<Answer<T>, ApiError>
    where
        T: DeserializeOwned,
        B: Serialize + ?Sized,
    {
        let url = format!("{origin}{path}");
        let mut request = self.http.request(method.clone(), &url);
        if let Some(cookie) = visitor.cookie() {
            request = request.header(COOKIE, cookie);
        }
        if let Some(hops) = visitor.forwarded_for() {
            request = request.header("x-forwarded-for", hops);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {method} {url}"))
            .map_err(ApiError::Unavailable)?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("reading the answer of {method} {url}"))
            .map_err(ApiError::Unavailable)?;
        let outcome = if status.is_success() {
            let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            Ok(serde_json::from_slice(bytes)
                .with_context(|| format!("decoding the answer of {method} {url} ({status})"))
                .map_err(ApiError::Unavailable)?)
        } else if status.is_client_error() {
            Err(Refusal::from_body(status, &bytes))
        } else {
            return Err(ApiError::Unavailable(anyhow::anyhow!(
                "{method} {url} answered {status}"
            )));
        };
        Ok(Answer { outcome, headers })
    }
}

impl<T> Answer<T> {
    /// The value, or the refusal.
    fn value(self) -> Result<T, ApiError> {
        self.outcome.map_err(ApiError::Refused)
    }

    /// The value with its headers, or the refusal.
    fn reply(self) -> Result<Reply<T>, ApiError> {
        match self.outcome {
            Ok(value) => Ok(Reply {
                value,
                headers: self.headers,
            }),
            Err(refusal) => Err(ApiError::Refused(refusal)),
        }
    }
}

/// Makes `call` until it gives anything but a 404 refusal, or `grace` has
/// passed since the first try, and gives its last answer. The services
/// learn of each other's resources through events: a ticket listed or an
/// order made a moment ago may be unknown for a moment to the service asked
/// about it next, and a 404 then means "not yet" rather than "no such
/// thing".
pub(crate) async fn retry_not_found<T, F, Fut>(grace: Duration, mut call: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        match call().await {
            Err(err)
                if err.is_refused_with(StatusCode::NOT_FOUND)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(RETRY_EVERY).await;
            }
            answer => return answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn refused(status: StatusCode) -> ApiError {
        ApiError::Refused(Refusal::from_body(status, b"{}"))
    }

    /// A call that answers the `answers` in turn, then the last one again,
    /// and counts how often it was made.
    async fn answering(
        calls: &AtomicUsize,
        answers: &[Option<StatusCode>],
    ) -> Result<&'static str, ApiError> {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        match answers[n.min(answers.len() - 1)] {
            None => Ok("value"),
            Some(status) => Err(refused(status)),
        }
    }

    #[tokio::test]
    async fn a_404_is_asked_again_until_the_value_comes() {
        let calls = AtomicUsize::new(0);
        let answers = [
            Some(StatusCode::NOT_FOUND),
            Some(StatusCode::NOT_FOUND),
            None,
        ];
        let answer = retry_not_found(Duration::from_secs(3), || answering(&calls, &answers)).await;
        assert_eq!(answer.ok(), Some("value"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn another_refusal_ends_the_retries_at_once() {
        let calls = AtomicUsize::new(0);
        let answers = [Some(StatusCode::NOT_FOUND), Some(StatusCode::BAD_REQUEST)];
        let answer = retry_not_found(Duration::from_secs(3), || answering(&calls, &answers)).await;
        assert!(matches!(answer, Err(err) if err.is_refused_with(StatusCode::BAD_REQUEST)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_404_past_the_grace_is_the_answer() {
        let calls = AtomicUsize::new(0);
        let answers = [Some(StatusCode::NOT_FOUND)];
        let started = tokio::time::Instant::now();
        let grace = Duration::from_millis(400);
        let answer = retry_not_found(grace, || answering(&calls, &answers)).await;
        assert!(matches!(answer, Err(err) if err.is_refused_with(StatusCode::NOT_FOUND)));
        assert!(started.elapsed() >= grace);
        assert!(calls.load(Ordering::SeqCst) > 1);
    }
}
