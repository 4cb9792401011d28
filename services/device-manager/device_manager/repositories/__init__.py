"""SQL through iothub.db.Database: parameterised queries only, sort and filter columns from whitelists."""
