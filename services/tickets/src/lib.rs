//! The tickets service.
