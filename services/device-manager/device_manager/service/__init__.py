"""Domain rules with no flask, psycopg2 or paho imports: roles, command states, config versions, OTA summaries."""
