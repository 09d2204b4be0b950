# Rate-limit counters every gateway instance shares: Memorystore for Redis in the gateway's VPC
# (reached over its Direct VPC egress). The gateway reads the URL, with the AUTH string, from
# Secret Manager; it holds counters keyed by user id hashes and addresses, never patient data.

resource "google_redis_instance" "rate_limits" {
  name               = "branet-rate-limits"
  tier               = "BASIC" # counters only: losing them at a failover resets the windows
  memory_size_gb     = 1
  region             = var.region
  redis_version      = "REDIS_7_2"
  authorized_network = "projects/${var.project_id}/global/networks/${var.network}"
  auth_enabled       = true
  depends_on         = [google_project_service.apis]

  #checkov:skip=CKV_GCP_97:In-transit TLS needs the instance's CA in every client; the traffic stays inside the VPC and carries counters only.
}

resource "google_secret_manager_secret" "rate_limit_storage" {
  secret_id = "branet-rate-limit-storage"
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]

  #checkov:skip=CKV_GCP_84:Google-managed keys suffice for a URL to a counters-only Redis.
}

resource "google_secret_manager_secret_version" "rate_limit_storage" {
  secret      = google_secret_manager_secret.rate_limit_storage.id
  secret_data = "redis://:${google_redis_instance.rate_limits.auth_string}@${google_redis_instance.rate_limits.host}:${google_redis_instance.rate_limits.port}/0"
}

resource "google_secret_manager_secret_iam_member" "gateway_reads_rate_limit_storage" {
  secret_id = google_secret_manager_secret.rate_limit_storage.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.gateway.email}"
}

# Idempotency keys expire after 24 h; Firestore's TTL policy deletes them (within a day after).
resource "google_firestore_field" "idempotency_key_expiry" {
  database   = google_firestore_database.default.name
  collection = "analyses_idempotency_keys"
  field      = "expires_at"
  ttl_config {}
  index_config {}
}
