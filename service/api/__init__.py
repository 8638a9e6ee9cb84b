"""HTTP routes, one module per API family. Each exports ``routes``."""
