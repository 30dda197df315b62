"""The Celery tasks (`tasks`): thin wrappers that take ids and call one pipeline function.

The Celery app stays at `worker.celery_app`, the path `celery -A` and docker-compose use;
logging and metrics are `worker.observe`.
"""
