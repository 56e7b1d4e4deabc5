"""Configuration records (frozen, validated at construction)."""
