//! The APIs as the pages see them: one typed call per endpoint, over HTTP,
//! carrying the browser's `Cookie` header so each API knows who is asking.
//! A call either reached an answer (success, or a client error with the
//! API's `{"errors": [...]}` body, see [`Refusal`]) or failed as a whole
//! (unreachable, 5xx, unreadable answer), which pages show as an error page.

mod types;

use std::time::Duration;

use anyhow::Context as _;
use axum::http::header::{COOKIE, LINK};
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use uuid::Uuid;

pub(crate) use types::{Order, Payment, Refusal, Ticket, TicketPage, User};

use crate::config::ApiUrls;
use crate::error::PageError;
use crate::extract::Visitor;
use types::CurrentUserBody;

/// What an API answered: the value, or the client error it refused with,
/// and the headers that pages pass on (`Set-Cookie`) or read (`Link`).
pub(crate) struct Reply<T> {
    pub(crate) outcome: Result<T, Refusal>,
    pub(crate) headers: HeaderMap,
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
    pub(crate) async fn current_user(&self, visitor: &Visitor) -> Result<Option<User>, PageError> {
        let reply: Reply<CurrentUserBody> = self
            .call(
                visitor,
                Method::GET,
                &self.auth,
                "/api/users/currentuser",
                None::<&()>,
            )
            .await?;
        // The endpoint never refuses; if it did, the visitor is anonymous.
        Ok(reply.outcome.ok().and_then(|body| body.current_user))
    }

    pub(crate) async fn sign_up(
        &self,
        visitor: &Visitor,
        email: &str,
        password: &str,
    ) -> Result<Reply<User>, PageError> {
        let body = json!({"email": email, "password": password});
        self.call(
            visitor,
            Method::POST,
            &self.auth,
            "/api/users/signup",
            Some(&body),
        )
        .await
    }

    pub(crate) async fn sign_in(
        &self,
        visitor: &Visitor,
        email: &str,
        password: &str,
    ) -> Result<Reply<User>, PageError> {
        let body = json!({"email": email, "password": password});
        self.call(
            visitor,
            Method::POST,
            &self.auth,
            "/api/users/signin",
            Some(&body),
        )
        .await
    }

    pub(crate) async fn sign_out(&self, visitor: &Visitor) -> Result<Reply<()>, PageError> {
        self.call(
            visitor,
            Method::POST,
            &self.auth,
            "/api/users/signout",
            None::<&()>,
        )
        .await
    }

    /// One page of free tickets, newest first, older than `before`.
    pub(crate) async fn tickets(
        &self,
        visitor: &Visitor,
        limit: u32,
        before: Option<Uuid>,
    ) -> Result<Result<TicketPage, Refusal>, PageError> {
        let mut path = format!("/api/tickets?limit={limit}");
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        let reply: Reply<Vec<Ticket>> = self
            .call(visitor, Method::GET, &self.tickets, &path, None::<&()>)
            .await?;
        let next = reply
            .headers
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(types::next_cursor);
        Ok(reply.outcome.map(|tickets| TicketPage { tickets, next }))
    }

    pub(crate) async fn ticket(
        &self,
        visitor: &Visitor,
        id: Uuid,
    ) -> Result<Result<Ticket, Refusal>, PageError> {
        let path = format!("/api/tickets/{id}");
        let reply = self
            .call(visitor, Method::GET, &self.tickets, &path, None::<&()>)
            .await?;
        Ok(reply.outcome)
    }

    /// Lists a ticket. `price` is the text the seller typed: sent as a JSON
    /// number when it is one, so that the API judges it and its message is
    /// the one shown next to the field.
    pub(crate) async fn create_ticket(
        &self,
        visitor: &Visitor,
        title: &str,
        price: &str,
    ) -> Result<Result<Ticket, Refusal>, PageError> {
        let body = json!({"title": title, "price": types::price_value(price)});
        let reply = self
            .call(
                visitor,
                Method::POST,
                &self.tickets,
                "/api/tickets",
                Some(&body),
            )
            .await?;
        Ok(reply.outcome)
    }

    pub(crate) async fn update_ticket(
        &self,
        visitor: &Visitor,
        id: Uuid,
        title: &str,
        price: &str,
    ) -> Result<Result<Ticket, Refusal>, PageError> {
        let body = json!({"title": title, "price": types::price_value(price)});
        let path = format!("/api/tickets/{id}");
        let reply = self
            .call(visitor, Method::PUT, &self.tickets, &path, Some(&body))
            .await?;
        Ok(reply.outcome)
    }

    pub(crate) async fn create_order(
        &self,
        visitor: &Visitor,
        ticket_id: Uuid,
    ) -> Result<Result<Order, Refusal>, PageError> {
        let body = json!({"ticketId": ticket_id});
        let reply = self
            .call(
                visitor,
                Method::POST,
                &self.orders,
                "/api/orders",
                Some(&body),
            )
            .await?;
        Ok(reply.outcome)
    }

    pub(crate) async fn orders(
        &self,
        visitor: &Visitor,
    ) -> Result<Result<Vec<Order>, Refusal>, PageError> {
        let reply = self
            .call(
                visitor,
                Method::GET,
                &self.orders,
                "/api/orders",
                None::<&()>,
            )
            .await?;
        Ok(reply.outcome)
    }

    pub(crate) async fn order(
        &self,
        visitor: &Visitor,
        id: Uuid,
    ) -> Result<Result<Order, Refusal>, PageError> {
        let path = format!("/api/orders/{id}");
        let reply = self
            .call(visitor, Method::GET, &self.orders, &path, None::<&()>)
            .await?;
        Ok(reply.outcome)
    }

    pub(crate) async fn cancel_order(
        &self,
        visitor: &Visitor,
        id: Uuid,
    ) -> Result<Result<(), Refusal>, PageError> {
        let path = format!("/api/orders/{id}");
        let reply = self
            .call(visitor, Method::DELETE, &self.orders, &path, None::<&()>)
            .await?;
        Ok(reply.outcome)
    }

    /// Charges the order with a card token (Stripe's, or a test token).
    pub(crate) async fn pay(
        &self,
        visitor: &Visitor,
        order_id: Uuid,
        token: &str,
    ) -> Result<Result<Payment, Refusal>, PageError> {
        let body = json!({"token": token, "orderId": order_id});
        let reply = self
            .call(
                visitor,
                Method::POST,
                &self.payments,
                "/api/payments",
                Some(&body),
            )
            .await?;
        Ok(reply.outcome)
    }

    /// Sends one request. 2xx is parsed as `T` (an empty body as JSON
    /// `null`, which `()` accepts); 4xx as the API's error body; anything
    /// else is the API failing, which no page can work around.
    async fn call<T, B>(
        &self,
        visitor: &Visitor,
        method: Method,
        origin: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<Reply<T>, PageError>
    where
        T: DeserializeOwned,
        B: Serialize + ?Sized,
    {
        let url = format!("{origin}{path}");
        let mut request = self.http.request(method.clone(), &url);
        if let Some(cookie) = visitor.cookie() {
            request = request.header(COOKIE, cookie);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("calling {method} {url}"))
            .map_err(PageError::Unavailable)?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("reading the answer of {method} {url}"))
            .map_err(PageError::Unavailable)?;
        let outcome = if status.is_success() {
            let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            Ok(serde_json::from_slice(bytes)
                .with_context(|| format!("decoding the answer of {method} {url} ({status})"))
                .map_err(PageError::Unavailable)?)
        } else if status.is_client_error() {
            Err(Refusal::from_body(status, &bytes))
        } else {
            return Err(PageError::Unavailable(anyhow::anyhow!(
                "{method} {url} answered {status}"
            )));
        };
        Ok(Reply { outcome, headers })
    }
}

/// Whether an API refusal means "sign in first".
pub(crate) fn needs_sign_in(refusal: &Refusal) -> bool {
    refusal.status == StatusCode::UNAUTHORIZED
}
