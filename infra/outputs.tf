output "gateway_url" {
  description = "The public API (point the mobile app here)."
  value       = google_cloud_run_v2_service.gateway.uri
}

output "images_bucket" {
  value = google_storage_bucket.images.name
}

output "models_bucket" {
  description = "Upload the SAM checkpoint here; set var.sam_checkpoint to its gs:// URI."
  value       = google_storage_bucket.models.name
}

output "registry" {
  description = "Push the three images here (cloudbuild.yaml does)."
  value       = local.registry
}
