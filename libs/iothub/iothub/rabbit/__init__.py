"""RabbitMQ plumbing: confirming publisher and batching consumer with the ack/retry/dead-letter policy."""

from iothub.rabbit.consumer import BatchConsumer, ConsumerConfig, Delivery
from iothub.rabbit.publisher import ConfirmPublisher

__all__ = ["BatchConsumer", "ConfirmPublisher", "ConsumerConfig", "Delivery"]
