"""What a person looks at: figures, mosaics, attribution figures and the report."""
