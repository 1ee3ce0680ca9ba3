"""Course plumbing: releasing and validating notebooks with nbgrader, building slides."""
