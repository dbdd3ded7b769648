//! bcgate
