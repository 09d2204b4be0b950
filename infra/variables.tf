variable "project_id" {
  description = "The GCP project (also the Firebase project whose ID tokens the gateway accepts)."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run services, the bucket and the registry."
  type        = string
  default     = "europe-west1"
}

variable "image_tag" {
  description = "Tag of the three images to deploy: the _TAG that infra/cloudbuild.yaml pushed them under."
  type        = string

  validation {
    condition     = var.image_tag != "" && var.image_tag != "latest"
    error_message = "Deploy the tag a build pushed (gcloud builds submit ... --substitutions _TAG=<tag>), not latest."
  }
}

variable "prometheus_sidecar_image" {
  description = "Managed Service for Prometheus sidecar that scrapes each service's /metrics into Cloud Monitoring (empty: none)."
  type        = string
  default     = "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0"
}

variable "sam_checkpoint" {
  description = "gs:// URI of an official SAM checkpoint in the model bucket (empty: BraNet's own lesion segmenter, baked into the image)."
  type        = string
  default     = ""
}

variable "gateway_min_instances" {
  description = "Warm gateway instances (0 scales to zero: a cold start on the first request)."
  type        = number
  default     = 0
}

variable "classifier_min_instances" {
  description = "Warm classifier instances; 1 keeps first-request latency at inference time."
  type        = number
  default     = 0
}

variable "segmenter_min_instances" {
  description = "Warm segmenter instances; SAM loads in tens of seconds, so 1 if ROI is used a lot."
  type        = number
  default     = 0
}

variable "max_instances" {
  description = "Upper bound per service (a cost ceiling)."
  type        = number
  default     = 10
}

variable "firebase_web_api_key" {
  description = "The Firebase web API key the gateway's page signs in with (public, as the Firebase console shows it); empty: the page cannot sign in, the API is unaffected."
  type        = string
  default     = ""
}

variable "cors_origins" {
  description = "Origins allowed by CORS at the gateway (the mobile app needs none)."
  type        = list(string)
  default     = []
}

variable "network" {
  description = "VPC network for the gateway's Direct VPC egress to the internal model services."
  type        = string
  default     = "default"
}

variable "subnetwork" {
  description = "Subnetwork (with Private Google Access) for that egress."
  type        = string
  default     = "default"
}

variable "image_retention_days" {
  description = "Days before a non-current (overwritten or deleted) image version is removed."
  type        = number
  default     = 30
}
