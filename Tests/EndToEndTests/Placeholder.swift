// End-to-end tests follow.
