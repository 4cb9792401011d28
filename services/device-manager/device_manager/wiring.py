"""The composition root's parts list: every adapter, repository and use-case service of one app, built once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from device_manager import metrics
from device_manager.amqp import AmqpPublisher
from device_manager.auth import passwords
from device_manager.broker_admin import DynsecBroker
from device_manager.device_ca import FileCa
from device_manager.firmware_store import firmware_images
from device_manager.keyring import HmacSigner, KekCipher
from device_manager.readers import archive_reader, raw_pages, series_reader
from device_manager.repositories.command_keys import CommandKeyRepository
from device_manager.repositories.commands import CommandRepository
from device_manager.repositories.configs import ConfigRepository
from device_manager.repositories.counts import CountCache
from device_manager.repositories.credentials import PostgresCredentials
from device_manager.repositories.dead_letters import DeadLetterRepository
from device_manager.repositories.device_types import DeviceTypeRepository
from device_manager.repositories.devices import DeviceRepository
from device_manager.repositories.energy import EnergyRepository
from device_manager.repositories.events import EventRepository
from device_manager.repositories.exports import ExportRepository
from device_manager.repositories.firmware import FirmwareRepository
from device_manager.repositories.notifications import NotificationRepository
from device_manager.repositories.ota import OtaRepository
from device_manager.repositories.rules import RuleRepository
from device_manager.repositories.stats import StatsRepository
from device_manager.repositories.subscriptions import SubscriptionRepository
from device_manager.repositories.users import TokenBlocklist, UserRepository
from device_manager.schemas.subscriptions import target_errors
from device_manager.service.command_keys import CommandKeyService
from device_manager.service.credentials import CredentialService
from device_manager.service.crl import CrlService
from device_manager.service.dead_letters import DeadLetterService
from device_manager.service.device_types import DeviceTypeService
from device_manager.service.devices import DeviceService
from device_manager.service.dispatch import CommandService
from device_manager.service.events import EventService
from device_manager.service.firmware import FirmwareService
from device_manager.service.metering import MeteringService
from device_manager.service.notifications import NotificationService
from device_manager.service.readings import ReadingService
from device_manager.service.rules import RuleService
from device_manager.service.signing import SignedPublisher
from device_manager.service.stats import StatsService
from device_manager.service.users import UserService
from device_manager.settings import Settings
from iothub.db import Database


@dataclass
class Services:
    """What every transport (the JSON API, the console) calls: the use-case services, plus the adapters the
    composition root owns (for readiness checks, metrics and shutdown)."""

    settings: Settings
    db: Database
    publisher: object  # device_manager.mqtt.CommandPublisher (or any object with publish_many/is_connected/close)
    amqp: AmqpPublisher
    devices: DeviceService
    device_types: DeviceTypeService
    commands: CommandService
    rules: RuleService
    events: EventService
    dead_letters: DeadLetterService
    notifications: NotificationService
    readings: ReadingService
    metering: MeteringService
    stats: StatsService
    users: UserService
    credentials: CredentialService
    crl: CrlService
    command_keys: CommandKeyService
    firmware: FirmwareService
    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)

    def close(self) -> None:
        """Stop what this app started (tests build many apps)."""
        self.amqp.close()
        self.publisher.close()
        self.db.close()


def build(settings: Settings, db: Database, publisher, checks: dict[str, Callable[[], bool]]) -> Services:
    """Wire repositories and adapters into the services."""
    amqp = AmqpPublisher(settings.amqp_url)
    archive = archive_reader(settings)
    cipher, keys = KekCipher(settings.command_key_kek), CommandKeyRepository(db)
    command_keys = CommandKeyService(keys, cipher)
    signed = SignedPublisher(publisher, HmacSigner(keys, cipher), timedelta(seconds=settings.command_signature_ttl_s),
                             on_unsigned=metrics.COMMANDS_PUBLISHED.labels("unsigned").inc)
    firmware = FirmwareService(firmware_images(settings), FirmwareRepository(db),
                               max_bytes=settings.firmware_max_bytes,
                               url_ttl=timedelta(seconds=settings.firmware_url_ttl_s))
    devices = DeviceService(DeviceRepository(db, CountCache()), settings.bulk_max, command_keys)
    commands = CommandRepository(db)
    creds, device_ca = PostgresCredentials(db), FileCa(settings.device_ca_cert, settings.device_ca_key)
    return Services(
        settings=settings, db=db, publisher=publisher, amqp=amqp, checks=checks,
        devices=devices,
        device_types=DeviceTypeService(DeviceTypeRepository(db)),
        commands=CommandService(commands, OtaRepository(db), ConfigRepository(db), signed, firmware=firmware),
        rules=RuleService(RuleRepository(db), amqp),
        events=EventService(EventRepository(db)),
        dead_letters=DeadLetterService(DeadLetterRepository(db), amqp),
        notifications=NotificationService(SubscriptionRepository(db), NotificationRepository(db), target_errors),
        readings=ReadingService(devices, series_reader(settings, db), archive, raw_pages(db, archive)),
        metering=MeteringService(devices, EnergyRepository(db),
                                 ExportRepository(db, batch_rows=settings.export_batch_rows)),
        stats=StatsService(StatsRepository(db)),
        users=UserService(UserRepository(db), passwords, TokenBlocklist(db)),
        credentials=CredentialService(
            creds,
            DynsecBroker(settings.mqtt_host, settings.mqtt_port, settings.mqtt_admin_auth,
                         prefix=settings.mqtt_topic_prefix, crl_pull=settings.device_ca_crl_distribution == "pull",
                         crl_path=settings.device_ca_crl, pidfile=settings.mqtt_broker_pidfile),
            device_ca, settings.bulk_max),
        crl=CrlService(creds, device_ca),
        command_keys=command_keys, firmware=firmware,
    )
