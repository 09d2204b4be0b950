# BraNet on Cloud Run: a public gateway and two private model services, images in GCS,
# results in Firestore. One service account per service, each with only what it needs.

locals {
  registry = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.branet.repository_id}"
  services = toset(["run.googleapis.com", "artifactregistry.googleapis.com", "firestore.googleapis.com",
    "storage.googleapis.com", "iam.googleapis.com", "cloudbuild.googleapis.com",
  "cloudtrace.googleapis.com", "monitoring.googleapis.com", "redis.googleapis.com", "secretmanager.googleapis.com"])
  # Each service's spans go to Cloud Trace, and its log lines name their trace in this project.
  observability_env = {
    for prefix in ["GATEWAY", "CLASSIFIER", "SEGMENTER"] : prefix => {
      "${prefix}_TRACE_EXPORTER" = "cloud_trace"
      GOOGLE_CLOUD_PROJECT       = var.project_id
    }
  }
  prometheus_sidecar = var.prometheus_sidecar_image == "" ? [] : [var.prometheus_sidecar_image]
  service_accounts = {
    gateway    = google_service_account.gateway.email
    classifier = google_service_account.classifier.email
    segmenter  = google_service_account.segmenter.email
  }
}

resource "google_project_service" "apis" {
  for_each           = local.services
  service            = each.value
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "branet" {
  repository_id = "branet"
  location      = var.region
  format        = "DOCKER"
  description   = "BraNet service images"
  depends_on    = [google_project_service.apis]

  #checkov:skip=CKV_GCP_84:The images hold code and model weights, no patient data; Google-managed keys suffice.
}

# --- identities ----------------------------------------------------------------------------

resource "google_service_account" "gateway" {
  account_id   = "branet-gateway"
  display_name = "BraNet gateway"
}

resource "google_service_account" "classifier" {
  account_id   = "branet-classifier"
  display_name = "BraNet classifier"
}

resource "google_service_account" "segmenter" {
  account_id   = "branet-segmenter"
  display_name = "BraNet segmenter"
}

# --- storage -------------------------------------------------------------------------------

resource "google_storage_bucket" "images" {
  name                        = "${var.project_id}-branet-images"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true # a deleted or overwritten image stays recoverable for a while
  }

  soft_delete_policy {
    retention_duration_seconds = 604800 # 7 days
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.image_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  #checkov:skip=CKV_GCP_62:Access logs go to Cloud Audit Logs (data access), not a log bucket.
}

resource "google_storage_bucket" "models" {
  name                        = "${var.project_id}-branet-models"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  #checkov:skip=CKV_GCP_62:Access logs go to Cloud Audit Logs (data access), not a log bucket.
}

resource "google_storage_bucket_iam_member" "gateway_images" {
  bucket = google_storage_bucket.images.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.gateway.email}"
}

resource "google_storage_bucket_iam_member" "models_readers" {
  for_each = {
    classifier = google_service_account.classifier.email
    segmenter  = google_service_account.segmenter.email
  }
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${each.value}"
}

resource "google_firestore_database" "default" {
  name                    = "(default)"
  location_id             = var.region
  type                    = "FIRESTORE_NATIVE"
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  depends_on              = [google_project_service.apis]
}

# The history query: owner == X, ordered by sort_key descending (firestore.indexes.json).
resource "google_firestore_index" "analyses_by_owner" {
  database   = google_firestore_database.default.name
  collection = "analyses"

  fields {
    field_path = "owner"
    order      = "ASCENDING"
  }
  fields {
    field_path = "sort_key"
    order      = "DESCENDING"
  }
}

resource "google_project_iam_member" "gateway_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.gateway.email}"
}

# Every service writes its spans to Cloud Trace and its Prometheus series to Cloud Monitoring.
resource "google_project_iam_member" "observability" {
  for_each = {
    for pair in setproduct(keys(local.service_accounts),
    ["roles/cloudtrace.agent", "roles/monitoring.metricWriter"]) : "${pair[0]} ${pair[1]}" => pair
  }
  project = var.project_id
  role    = each.value[1]
  member  = "serviceAccount:${local.service_accounts[each.value[0]]}"
}
