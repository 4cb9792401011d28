"""Authentication: password hashing, JWT callbacks, the role decorator and the /auth routes."""
