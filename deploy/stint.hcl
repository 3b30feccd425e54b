# Stint server configuration used by docker-compose.yml.
# Storage and the auto-unseal key come from the environment (STINT_STORAGE_URL, STINT_UNSEAL_KEY),
# so this file holds no secret.

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true
}

storage "postgres" {
  connection_url = "postgres://stint:stint@storage:5432/stint"
}

seal "static" {
  key_env = "STINT_UNSEAL_KEY"
}

log_level = "info"
