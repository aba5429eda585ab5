//! Input of the users API, validated into values the handlers can trust.

use serde::Deserialize;
use validator::Validate;

use common::ApiError;

/// The body of sign-up and sign-in. Missing fields default to empty, so that
/// every bad field gets its own error entry.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct CredentialsBody {
    /// Trimmed and lower-cased before use.
    #[serde(default)]
    #[schema(required = true, format = Email, max_length = 254, examples("ada@example.com"))]
    email: String,
    /// 8 to 128 characters to sign up; any non-empty one to sign in.
    #[serde(default)]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 128,
        examples("correct horse")
    )]
    password: String,
}

#[derive(Debug, Validate)]
struct NewCredentials {
    #[validate(
        email(message = "Email must be valid"),
        length(max = 254, message = "Email must be valid")
    )]
    email: String,
    #[validate(length(
        min = 8,
        max = 128,
        message = "Password must be between 8 and 128 characters"
    ))]
    password: String,
}

#[derive(Debug, Validate)]
struct ExistingCredentials {
    #[validate(
        email(message = "Email must be valid"),
        length(max = 254, message = "Email must be valid")
    )]
    email: String,
    #[validate(length(min = 1, message = "You must supply a password"))]
    password: String,
}

/// Credentials that passed validation; the email is trimmed and lower-cased.
#[derive(Debug)]
pub(crate) struct Credentials {
    pub(crate) email: String,
    pub(crate) password: String,
}

impl CredentialsBody {
    /// For sign-up: a valid email and a password of 8 to 128 characters.
    pub(crate) fn for_signup(self) -> Result<Credentials, ApiError> {
        let input = NewCredentials {
            email: normalise(&self.email),
            password: self.password,
        };
        input.validate()?;
        Ok(Credentials {
            email: input.email,
            password: input.password,
        })
    }

    /// For sign-in: a valid email and any non-empty password.
    pub(crate) fn for_signin(self) -> Result<Credentials, ApiError> {
        let input = ExistingCredentials {
            email: normalise(&self.email),
            password: self.password,
        };
        input.validate()?;
        Ok(Credentials {
            email: input.email,
            password: input.password,
        })
    }
}

fn normalise(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(email: &str, password: &str) -> CredentialsBody {
        CredentialsBody {
            email: email.into(),
            password: password.into(),
        }
    }

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation(f) => f.into_iter().filter_map(|f| f.field).collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let c = body("  Alice@Example.COM ", "password1")
            .for_signup()
            .expect("valid");
        assert_eq!(c.email, "alice@example.com");
    }

    #[test]
    fn each_bad_field_gets_its_own_entry() {
        let err = body("not-an-email", "short")
            .for_signup()
            .expect_err("invalid");
        assert_eq!(fields(err), vec!["email", "password"]);
    }

    #[test]
    fn passwords_must_be_8_to_128_characters() {
        assert!(body("a@b.co", &"x".repeat(7)).for_signup().is_err());
        assert!(body("a@b.co", &"x".repeat(8)).for_signup().is_ok());
        assert!(body("a@b.co", &"é".repeat(128)).for_signup().is_ok());
        assert!(body("a@b.co", &"x".repeat(129)).for_signup().is_err());
    }

    #[test]
    fn signin_only_needs_some_password() {
        assert!(body("a@b.co", "x").for_signin().is_ok());
        assert_eq!(
            fields(body("a@b.co", "").for_signin().expect_err("empty")),
            vec!["password"]
        );
    }
}
