# The three Cloud Run services. Sizes come from the benchmarks (bench/): ResNet18 needs little
# memory and answers in tens of ms per image; SAM ViT-B needs ~4 GB and seconds per image.

resource "google_cloud_run_v2_service" "classifier" {
  name                = "branet-classifier"
  location            = var.region

  # The image is var.image_tag's, which Cloud Build pushed (infra/cloudbuild.yaml).
  lifecycle {
    ignore_changes = [client, client_version]
  }
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = false

  template {
    service_account                  = google_service_account.classifier.email
    max_instance_request_concurrency = 8 # requests queue for the CPU-bound model, bounded

    scaling {
      min_instance_count = var.classifier_min_instances
      max_instance_count = var.max_instances
    }

    containers {
      image = "${local.registry}/classifier:${var.image_tag}"
      name  = "app"
      ports {
        container_port = 8080
      }
      resources {
        limits            = { cpu = "2", memory = "2Gi" }
        cpu_idle          = true
        startup_cpu_boost = true
      }
      dynamic "env" {
        for_each = merge(local.observability_env["CLASSIFIER"], { CLASSIFIER_MAX_CONCURRENCY = "2" })
        content {
          name  = env.key
          value = env.value
        }
      }
      startup_probe {
        http_get {
          path = "/readyz"
        }
        period_seconds    = 5
        failure_threshold = 24
      }
      liveness_probe {
        http_get {
          path = "/healthz"
        }
      }
    }
    # Scrapes the app's /metrics (port 8080) into Cloud Monitoring (Managed Prometheus).
    dynamic "containers" {
      for_each = local.prometheus_sidecar
      content {
        name       = "prometheus"
        image      = containers.value
        depends_on = ["app"]
      }
    }
  }
}

resource "google_cloud_run_v2_service" "segmenter" {
  name                = "branet-segmenter"
  location            = var.region

  # The image is var.image_tag's, which Cloud Build pushed (infra/cloudbuild.yaml).
  lifecycle {
    ignore_changes = [client, client_version]
  }
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = false

  template {
    service_account                  = google_service_account.segmenter.email
    max_instance_request_concurrency = 2 # SAM saturates the CPUs; more would only queue memory
    timeout                          = "300s"

    scaling {
      min_instance_count = var.segmenter_min_instances
      max_instance_count = var.max_instances
    }

    containers {
      image = "${local.registry}/segmenter:${var.image_tag}"
      name  = "app"
      ports {
        container_port = 8080
      }
      resources {
        limits            = { cpu = "4", memory = "8Gi" }
        cpu_idle          = true
        startup_cpu_boost = true
      }
      dynamic "env" {
        for_each = local.observability_env["SEGMENTER"]
        content {
          name  = env.key
          value = env.value
        }
      }
      # Unset: BraNet's own lesion segmenter, baked into the image.
      dynamic "env" {
        for_each = var.sam_checkpoint == "" ? [] : [var.sam_checkpoint]
        content {
          name  = "SEGMENTER_CHECKPOINT"
          value = env.value
        }
      }
      startup_probe {
        http_get {
          path = "/healthz" # alive without a model; /readyz says whether one is loaded
        }
        period_seconds    = 10
        failure_threshold = 30
      }
    }
    # Scrapes the app's /metrics (port 8080) into Cloud Monitoring (Managed Prometheus).
    dynamic "containers" {
      for_each = local.prometheus_sidecar
      content {
        name       = "prometheus"
        image      = containers.value
        depends_on = ["app"]
      }
    }
  }
}

resource "google_cloud_run_v2_service" "gateway" {
  name                = "branet-gateway"
  location            = var.region

  # The image is var.image_tag's, which Cloud Build pushed (infra/cloudbuild.yaml).
  lifecycle {
    ignore_changes = [client, client_version]
  }
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = false
  # Its rate-limit store's URL must be readable when the first revision starts.
  depends_on = [google_secret_manager_secret_version.rate_limit_storage,
  google_secret_manager_secret_iam_member.gateway_reads_rate_limit_storage]

  template {
    service_account                  = google_service_account.gateway.email
    max_instance_request_concurrency = 40 # mostly waiting on the model services and storage
    timeout                          = "300s"

    scaling {
      min_instance_count = var.gateway_min_instances
      max_instance_count = var.max_instances
    }

    # Direct VPC egress: the model services accept internal traffic only.
    vpc_access {
      network_interfaces {
        network    = var.network
        subnetwork = var.subnetwork
      }
      egress = "ALL_TRAFFIC"
    }

    containers {
      image = "${local.registry}/gateway:${var.image_tag}"
      name  = "app"
      ports {
        container_port = 8080
      }
      resources {
        limits   = { cpu = "1", memory = "1Gi" }
        cpu_idle = true
      }
      dynamic "env" {
        for_each = merge(local.observability_env["GATEWAY"], {
          GATEWAY_AUTH_MODE              = "firebase"
          GATEWAY_FIREBASE_PROJECT_ID    = var.project_id
          GATEWAY_FIREBASE_API_KEY       = var.firebase_web_api_key
          GATEWAY_BLOB_BACKEND           = "gcs"
          GATEWAY_GCS_BUCKET             = google_storage_bucket.images.name
          GATEWAY_RESULT_BACKEND         = "firestore"
          GATEWAY_GCP_PROJECT            = var.project_id
          GATEWAY_CLASSIFIER_URL         = google_cloud_run_v2_service.classifier.uri
          GATEWAY_SEGMENTER_URL          = google_cloud_run_v2_service.segmenter.uri
          GATEWAY_MODEL_AUTH             = "id_token"
          GATEWAY_PROXY_HOPS             = "1" # the front end appends the client's address
          GATEWAY_MAX_IN_FLIGHT_ANALYSES = "16"
          GATEWAY_CORS_ORIGINS           = jsonencode(var.cors_origins)
        })
        content {
          name  = env.key
          value = env.value
        }
      }
      env {
        name = "GATEWAY_RATE_LIMIT_STORAGE" # one limit across every instance
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.rate_limit_storage.secret_id
            version = "latest"
          }
        }
      }
      startup_probe {
        http_get {
          path = "/healthz"
        }
      }
      liveness_probe {
        http_get {
          path = "/healthz"
        }
      }
    }
    # Scrapes the app's /metrics (port 8080) into Cloud Monitoring (Managed Prometheus).
    dynamic "containers" {
      for_each = local.prometheus_sidecar
      content {
        name       = "prometheus"
        image      = containers.value
        depends_on = ["app"]
      }
    }
  }
}

# The gateway is public: the app signs users in with Firebase and the gateway checks tokens.
resource "google_cloud_run_v2_service_iam_member" "gateway_public" {
  name     = google_cloud_run_v2_service.gateway.name
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# Only the gateway's identity may invoke the model services.
resource "google_cloud_run_v2_service_iam_member" "gateway_invokes_models" {
  for_each = {
    classifier = google_cloud_run_v2_service.classifier.name
    segmenter  = google_cloud_run_v2_service.segmenter.name
  }
  name     = each.value
  location = var.region
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.gateway.email}"
}
