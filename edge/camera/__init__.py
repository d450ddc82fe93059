"""Camera capture and grading (issue 6): not part of the foundation; nothing here yet."""
