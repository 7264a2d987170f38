//! Shows: creating one with the inventory of its sections, and opening, closing or
//! cancelling its sales. Streams: `show-<id>`, and on creation every bucket of its
//! sections (`inventory-<show>-<section>[~k]`).

use ticketing_domain::*;

use crate::execution::{CommandContext, Decision, Idempotency};
use crate::repository::Loaded;
use crate::{AppError, Ticketing};

impl Ticketing {
    /// Creates a show and the inventory of each of its sections, atomically.
    ///
    /// # Errors
    /// [`DomainError::ShowStartsInPast`], or the store's errors.
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor))]
    pub async fn create_show(
        &self,
        ctx: &CommandContext,
        organizer_id: OrganizerId,
        plan: ShowPlan,
    ) -> Result<ShowId, AppError> {
        let idempotency = Idempotency::of(ctx, "create_show", &(&organizer_id, &plan));
        self.once(idempotency.as_ref(), async {
            let show_id = ShowId::new();
            let (organizer_id, plan) = (&organizer_id, &plan);
            self.execute(ctx, idempotency.as_ref(), move || async move {
                let now = self.clock.now();
                let show = Loaded::<Show>::empty(show_stream(show_id));
                let created = show.state.decide(
                    ShowCommand::Create {
                        show_id,
                        organizer_id: organizer_id.clone(),
                        plan: plan.clone(),
                    },
                    now,
                )?;
                let mut changes = vec![show.change(created)];
                for spec in &plan.sections {
                    for (bucket, capacity) in (0..).zip(spec.bucket_capacities()) {
                        let inventory =
                            Loaded::<Inventory>::empty(bucket_stream(show_id, &spec.name, bucket));
                        let initialized = inventory.state.decide(
                            InventoryCommand::Initialize {
                                show_id,
                                section: spec.name.clone(),
                                capacity,
                                unit_price: spec.unit_price,
                                max_per_order: plan.max_per_order,
                            },
                            now,
                        )?;
                        changes.push(inventory.change(initialized));
                    }
                }
                Ok(Decision {
                    completes: true,
                    changes,
                    outcome: show_id,
                })
            })
            .await
        })
        .await
    }

    /// Opens, closes or cancels sales of a show.
    ///
    /// Cancelling through this records the cancellation only; [`Ticketing::cancel_show`]
    /// also releases the show's holds and refunds its purchases, and is what callers
    /// should use.
    ///
    /// # Errors
    /// [`DomainError::ShowNotFound`], [`DomainError::SalesAlreadyOpen`],
    /// [`DomainError::SalesNotOpen`], [`DomainError::ShowCancelled`].
    #[tracing::instrument(skip_all, fields(actor = %ctx.actor, %show_id))]
    pub async fn change_sales(
        &self,
        ctx: &CommandContext,
        show_id: ShowId,
        command: ShowCommand,
    ) -> Result<(), AppError> {
        let idempotency = Idempotency::of(ctx, "change_sales", &(&show_id, &command));
        self.once(idempotency.as_ref(), async {
            let command = &command;
            self.execute(ctx, idempotency.as_ref(), move || async move {
                let show = self.load::<Show>(&show_stream(show_id)).await?;
                let events = show.state.decide(command.clone(), self.clock.now())?;
                Ok(Decision {
                    completes: true,
                    changes: vec![show.change(events)],
                    outcome: (),
                })
            })
            .await
        })
        .await
    }
}
