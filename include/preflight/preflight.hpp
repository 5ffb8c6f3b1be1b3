#pragma once
// Umbrella header: the public API of every component.
#include <preflight/cache/client_key.hpp>
#include <preflight/cache/client_memoizer.hpp>
#include <preflight/cache/deployed_state_cache.hpp>
#include <preflight/cache/fingerprint.hpp>
#include <preflight/cache/outcome_cache.hpp>
#include <preflight/cache/ttl_lru_cache.hpp>
#include <preflight/clients/redact.hpp>
#include <preflight/core/clock.hpp>
#include <preflight/core/errc.hpp>
#include <preflight/gates/operation.hpp>
#include <preflight/limits/admission_store.hpp>
#include <preflight/limits/fixed_window_store.hpp>
#include <preflight/limits/operation_class.hpp>
#include <preflight/limits/rate_limit_store.hpp>
