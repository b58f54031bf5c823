# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Jobs that act on OCI recipe builds."""

__all__ = [
    "OCIRecipeBuildJob",
    "OCIRecipeBuildJobType",
    "OCIRegistryUploadJob",
]

from storm.databases.postgres import JSON
from storm.locals import Int, Reference
from zope.interface import implementer, provider

from lp.oci.interfaces.ocirecipebuildjob import (
    IOCIRecipeBuildJob,
    IOCIRegistryUploadJob,
    IOCIRegistryUploadJobSource,
    OCIRecipeBuildJobType,
)
from lp.services.database.enumcol import DBEnum
from lp.services.database.interfaces import IPrimaryStore
from lp.services.database.stormbase import StormBase
from lp.services.job.model.job import Job


@implementer(IOCIRecipeBuildJob)
class OCIRecipeBuildJob(StormBase):
    """See `IOCIRecipeBuildJob`."""

    __storm_table__ = "OCIRecipeBuildJob"

    job_id = Int(name="job", primary=True, allow_none=False)
    job = Reference(job_id, "Job.id")

    build_id = Int(name="build", allow_none=False)
    build = Reference(build_id, "OCIRecipeBuild.id")

    job_type = DBEnum(enum=OCIRecipeBuildJobType, allow_none=False)

    json_data = JSON("json_data", allow_none=False)

    def __init__(self, build, job_type, json_data, max_retries=0):
        super().__init__()
        self.job = Job(max_retries=max_retries)
        self.build = build
        self.job_type = job_type
        self.json_data = json_data

    def makeDerived(self):
        """See `IOCIRecipeBuildJob`."""
        if self.job_type == OCIRecipeBuildJobType.REGISTRY_UPLOAD:
            return OCIRegistryUploadJob(self)
        raise ValueError(f"Unknown job type {self.job_type!r}")


@implementer(IOCIRegistryUploadJob)
@provider(IOCIRegistryUploadJobSource)
class OCIRegistryUploadJob:
    """See `IOCIRegistryUploadJob`."""

    class_job_type = OCIRecipeBuildJobType.REGISTRY_UPLOAD

    def __init__(self, context):
        self.context = context

    def __repr__(self):
        return "<OCIRegistryUploadJob for build %d>" % self.context.build_id

    @classmethod
    def create(cls, build):
        """See `IOCIRegistryUploadJobSource`."""
        context = OCIRecipeBuildJob(build, cls.class_job_type, {})
        store = IPrimaryStore(OCIRecipeBuildJob)
        store.add(context)
        store.flush()
        return cls(context)

    @property
    def job(self):
        return self.context.job

    @property
    def build(self):
        return self.context.build

    @property
    def json_data(self):
        return self.context.json_data

    def _update(self, **values):
        data = dict(self.context.json_data)
        data.update(values)
        # Assign a new object so that Storm sees the change.
        self.context.json_data = data

    @property
    def error_summary(self):
        """See `IOCIRegistryUploadJob`."""
        return self.json_data.get("error_summary")

    @error_summary.setter
    def error_summary(self, summary):
        self._update(error_summary=summary)

    @property
    def errors(self):
        """See `IOCIRegistryUploadJob`."""
        return self.json_data.get("errors")

    @errors.setter
    def errors(self, errors):
        self._update(errors=errors)

    @property
    def build_uploaded(self):
        """See `IOCIRegistryUploadJob`."""
        return bool(self.json_data.get("build_uploaded", False))

    @build_uploaded.setter
    def build_uploaded(self, uploaded):
        self._update(build_uploaded=bool(uploaded))
