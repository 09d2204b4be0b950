terraform {
  required_version = ">= 1.6"
  # State in a GCS bucket of the project (versioned, locked): created once, named at init,
  #   terraform -chdir=infra init -backend-config="bucket=<project>-branet-tfstate"
  backend "gcs" {
    prefix = "branet"
  }
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.10"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
